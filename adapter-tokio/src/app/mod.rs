//! The application's API: how an application builds an instance, registers what it runs, and
//! acts on connections.
//!
//! [`builder`] starts an instance ([`Roomcast::builder`](crate::Roomcast::builder)) from what
//! the application [`registry`] holds: handlers by event pattern ([`router`]) with their
//! extractors ([`handler`], [`context`]'s [`Socket`](crate::Socket) and
//! [`Broadcast`](crate::Broadcast), per-connection [`extensions`]), and hooks: `on_connect`
//! ([`on_connect`]), `on_authenticate` ([`auth`], or [`jwt`]'s verifier), `on_publish`,
//! `on_disconnect`. [`dispatch`] runs the handlers, one lane per connection. [`handle`] is the
//! [`Handle`](crate::Handle) every part uses to reach the hub task.

pub(crate) mod auth;
pub(crate) mod builder;
pub(crate) mod context;
pub(crate) mod dispatch;
pub(crate) mod extensions;
pub(crate) mod handle;
pub(crate) mod handler;
#[cfg(feature = "jwt")]
pub(crate) mod jwt;
pub(crate) mod on_connect;
pub(crate) mod registry;
pub(crate) mod router;
pub(crate) mod views;
