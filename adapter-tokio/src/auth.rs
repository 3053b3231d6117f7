//! Deciding `authenticate` frames.

use std::future::Future;
use std::pin::Pin;

use roomcast_core::{ConnId, Identity};
use serde_json::value::RawValue;

/// What a client sent in `authenticate`.
#[derive(Debug)]
pub struct AuthRequest {
    /// The connection.
    pub conn: ConnId,
    /// The `token` field.
    pub token: String,
    /// The whole `data` object.
    pub credentials: Box<RawValue>,
}

/// A boxed future, as [`Authenticator::authenticate`] returns.
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Identity, String>> + Send + 'a>>;

/// Decides `authenticate` frames. Accept with an [`Identity`], or reject with a reason (the
/// client is closed with 4003). Each decision runs in its own task; one that takes longer than
/// 3 × `auth_timeout` is overtaken by close 4001.
///
/// Without an authenticator, `Authenticate` events go to the application, which answers with
/// [`Handle::accept_auth`](crate::Handle::accept_auth) or [`Handle::reject_auth`](crate::Handle::reject_auth).
pub trait Authenticator: Send + Sync + 'static {
    /// Decides one request.
    fn authenticate(&self, request: AuthRequest) -> AuthFuture<'_>;
}
