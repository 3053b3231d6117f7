//! An HS256 JWT authenticator, as `roomcast serve --jwt-secret` uses.
//!
//! The token is the `token` of the `authenticate` frame. Claims:
//!
//! | claim | meaning |
//! |---|---|
//! | `sub` | required: the user id |
//! | `exp` | optional: seconds since the Unix epoch; an expired token is rejected (no leeway) |
//! | `rooms` | optional: the rooms the user may join by itself, exact names or prefixes ending in `*` |
//! | `info` | optional: any JSON, kept as the connection's metadata |

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use roomcast_core::{Identity, RoomAcl};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::auth::{AuthFuture, AuthRequest, Authenticator};

/// Verifies HS256 tokens signed with a shared secret.
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
}

impl JwtAuth {
    /// Tokens signed with HMAC-SHA256 and `secret`.
    pub fn hs256(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["sub"]);
        validation.leeway = 0;
        Self { key: DecodingKey::from_secret(secret), validation }
    }

    /// Checks one token: the identity, or why it was refused.
    pub fn verify(&self, token: &str) -> Result<Identity, String> {
        let claims = decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| format!("invalid token: {e}"))?
            .claims;
        if claims.sub.is_empty() || claims.sub.len() > roomcast_core::MAX_USER_ID_BYTES {
            return Err("invalid token: sub must be 1..=256 bytes".into());
        }
        Ok(Identity {
            user_id: Some(claims.sub),
            metadata: claims.info,
            rooms: claims.rooms.map_or(RoomAcl::Any, RoomAcl::Only),
        })
    }
}

impl Authenticator for JwtAuth {
    fn authenticate(&self, request: AuthRequest) -> AuthFuture<'_> {
        let decision = self.verify(&request.token);
        Box::pin(std::future::ready(decision))
    }
}
