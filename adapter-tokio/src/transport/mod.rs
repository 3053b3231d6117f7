//! The transport: sockets from the listener to the hub task's door, and the bytes they write.
//!
//! [`listen`] accepts TCP connections and [`upgrade`] answers their HTTP upgrade (the
//! [`request`] the application's `on_connect` sees). On the fast path each upgraded stream gets a
//! [`link`]: its write buffer ([`write_buffer`], counted in the global [`budget`], its spare
//! buffers in the [`buffer_pool`]) that the hub task fills with frames ([`codec`], compressed by
//! [`deflate`] when negotiated), and its own reading task ([`link_task`]). A socket of another
//! WebSocket implementation ([`message`]'s traits) runs in [`stream`] instead, with a writer task
//! fed through a bounded [`queue`]. [`tracker`] counts the live sockets of both kinds, so a
//! shutdown can wait for them.
//!
//! [`attach`] is where a socket, upgraded, is handed to the hub task.
//!
//! Everything here talks to the hub task only through [`crate::driver::to_hub`].

pub(crate) mod attach;
pub(crate) mod budget;
pub(crate) mod buffer_pool;
pub(crate) mod codec;
pub(crate) mod deflate;
pub(crate) mod link;
pub(crate) mod link_task;
pub(crate) mod listen;
pub(crate) mod message;
pub(crate) mod queue;
pub(crate) mod request;
pub(crate) mod stream;
pub(crate) mod tracker;
pub(crate) mod upgrade;
pub(crate) mod write_buffer;
