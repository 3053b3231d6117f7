//! Deciding `authenticate` frames.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use roomcast_core::AuthDenied;
use roomcast_core::{ConnId, Identity};
use serde_json::value::RawValue;

use crate::app::on_connect::Admit;
use crate::transport::request::UpgradeRequest;

/// What a client sent in `authenticate`.
#[derive(Debug)]
#[non_exhaustive]
pub struct AuthRequest {
    /// The connection.
    pub conn: ConnId,
    /// The `token` field.
    pub token: String,
    /// The whole `data` object.
    pub credentials: Box<RawValue>,
    /// The upgrade request that opened the connection, for authenticators that ask for it
    /// ([`Authenticator::wants_request`]).
    pub request: Option<Arc<UpgradeRequest>>,
}

impl From<Identity> for Admit {
    fn from(identity: Identity) -> Self {
        Admit::new().identity(identity)
    }
}

/// A boxed future, as [`Authenticator::authenticate`] returns.
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Admit, AuthDenied>> + Send + 'a>>;

/// Decides `authenticate` frames. Accept with an [`Admit`] (an [`Identity`] converts into one;
/// the rooms it names are joined right after the client's `connected`), or deny
/// ([`AuthDenied`]: 4003 for refused credentials, 1013 or 1011 when the authority failed).
/// Each decision runs in its own task; one that takes longer than 3 × `auth_timeout` is
/// overtaken by close 4001.
///
/// Without an authenticator, `Authenticate` events go to the application, which answers with
/// [`Handle::accept_auth`](crate::Handle::accept_auth) or [`Handle::reject_auth`](crate::Handle::reject_auth).
pub trait Authenticator: Send + Sync + 'static {
    /// Decides one request.
    fn authenticate(&self, request: AuthRequest) -> AuthFuture<'_>;

    /// Whether [`AuthRequest::request`] should hold the upgrade request (headers, peer). Kept
    /// from the upgrade until the decision only when this is `true`. Default: `false`.
    fn wants_request(&self) -> bool {
        false
    }
}
