//! A JWT authenticator, as `roomcast serve --jwt-secret` and `--jwt-public-key` use: HS256 with
//! a shared secret, or RS256 / ES256 with a public key.
//!
//! The token is the `token` of the `authenticate` frame. Claims:
//!
//! | claim | meaning |
//! |---|---|
//! | `sub` | required: the user id |
//! | `exp` | optional: seconds since the Unix epoch; an expired token is rejected (no leeway), and a connection whose token expires is told `token_expiring` and closed with 4004 unless it sends `refresh` with a fresh token |
//! | `rooms` | optional: the connection's rooms list (patterns, `*` matching any run of characters): the `join = token` rooms it may join and leave by itself |
//! | `info` | optional: any JSON, kept as the connection's metadata |
//! | `aud`, `iss` | checked when an audience or issuer is set |

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use roomcast_core::{Identity, RoomAcl};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::app::auth::{AuthDenied, AuthFuture, AuthRequest, Authenticator};
use crate::app::on_connect::Admit;

/// Verifies tokens: HS256 with a shared secret, or RS256 / ES256 with a public key.
pub struct JwtAuth {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth").finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    rooms: Option<Vec<String>>,
    #[serde(default)]
    info: Option<Box<RawValue>>,
    #[serde(default)]
    exp: Option<u64>,
}

impl JwtAuth {
    /// Tokens signed with HMAC-SHA256 and `secret`.
    pub fn hs256(secret: &[u8]) -> Self {
        Self::new(DecodingKey::from_secret(secret), Algorithm::HS256)
    }

    /// Tokens signed with the private key of `pem`, a PEM public key: RSA (RS256) or EC P-256
    /// (ES256).
    pub fn public_key_pem(pem: &[u8]) -> Result<Self, String> {
        if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            return Ok(Self::new(key, Algorithm::RS256));
        }
        match DecodingKey::from_ec_pem(pem) {
            Ok(key) => Ok(Self::new(key, Algorithm::ES256)),
            Err(e) => Err(format!("not an RSA or EC P-256 public key in PEM: {e}")),
        }
    }

    fn new(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["sub"]);
        validation.leeway = 0;
        // `aud` is checked only when an audience is set.
        validation.validate_aud = false;
        Self { key, validation }
    }

    /// Accepts only tokens whose `aud` holds `audience` (a token without `aud` is refused).
    pub fn audience(mut self, audience: &str) -> Self {
        self.validation.set_audience(&[audience]);
        self.validation.validate_aud = true;
        self.validation.required_spec_claims.insert("aud".to_owned());
        self
    }

    /// Accepts only tokens whose `iss` is `issuer` (a token without `iss` is refused).
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.validation.set_issuer(&[issuer]);
        self.validation.required_spec_claims.insert("iss".to_owned());
        self
    }

    /// Checks one token: the identity, or why it was refused.
    pub fn verify(&self, token: &str) -> Result<Identity, String> {
        let claims = decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| format!("invalid token: {e}"))?
            .claims;
        if claims.sub.is_empty() || claims.sub.len() > roomcast_core::MAX_USER_ID_BYTES {
            return Err("invalid token: sub must be 1..=256 bytes".into());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Identity {
            expires_in: claims
                .exp
                .map(|exp| std::time::Duration::from_secs(exp.saturating_sub(now))),
            user_id: Some(claims.sub),
            metadata: claims.info,
            rooms: claims.rooms.map_or(RoomAcl::Any, RoomAcl::Only),
        })
    }
}

impl Authenticator for JwtAuth {
    fn authenticate(&self, request: AuthRequest) -> AuthFuture<'_> {
        let decision = self.verify(&request.token).map(Admit::from).map_err(AuthDenied::from);
        Box::pin(std::future::ready(decision))
    }
}
