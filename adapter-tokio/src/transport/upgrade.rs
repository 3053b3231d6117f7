//! The HTTP/1.1 upgrade to WebSocket (RFC 6455, 4.2) and the hand-over of the upgraded stream:
//! a plain TCP stream goes to roomcast's own socket loop (the fast path); any other transport
//! (TLS, or a server whose connection type roomcast cannot see through) to tungstenite.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::request::Parts;
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::app::handle::Handle;
use crate::app::on_connect::{Admit, Refusal, Refuse};
use crate::driver::Arrival;
use crate::options::websocket_config;
use crate::transport::deflate::{self, Agreed};
use crate::transport::request::UpgradeRequest;

/// The response to an upgrade request: 101 with the accept key, or why it is refused.
pub(crate) fn respond(method: &Method, headers: &HeaderMap) -> Response<Full<Bytes>> {
    match accept_key(method, headers) {
        Ok(accept) => {
            let mut response = Response::new(Full::default());
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let headers = response.headers_mut();
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
            response
        }
        Err((status, why)) => {
            let mut response = Response::new(Full::new(Bytes::from_static(why.as_bytes())));
            *response.status_mut() = status;
            if status == StatusCode::UPGRADE_REQUIRED {
                response
                    .headers_mut()
                    .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                response
                    .headers_mut()
                    .insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            }
            response
        }
    }
}

/// Checks a WebSocket upgrade request and derives its `Sec-WebSocket-Accept`.
fn accept_key(
    method: &Method,
    headers: &HeaderMap,
) -> Result<HeaderValue, (StatusCode, &'static str)> {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .as_bytes()
                .split(|&b| b == b',')
                .any(|v| v.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return Err((StatusCode::UPGRADE_REQUIRED, "a WebSocket endpoint: upgrade required\n"));
    }
    if method != Method::GET {
        return Err((StatusCode::METHOD_NOT_ALLOWED, "a WebSocket upgrade is a GET\n"));
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        return Err((StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only\n"));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or((StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing\n"))?;
    HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .map_err(|_| (StatusCode::BAD_REQUEST, "bad Sec-WebSocket-Key\n"))
}

/// Answers an upgrade request: checks it (RFC 6455), asks the application's `on_connect` hook,
/// and on 101 takes the connection over once hyper has sent the response. The request's parts
/// are kept for the application (moved, not copied) only when it has hooks or handlers.
pub(crate) async fn answer(
    mut parts: Parts,
    peer: Option<SocketAddr>,
    handle: Handle,
) -> Response<Full<Bytes>> {
    let response = respond(&parts.method, &parts.headers);
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return response;
    }
    let options = handle.options();
    if let Some(origin) = parts.headers.get(header::ORIGIN)
        && !origin.to_str().is_ok_and(|origin| options.origin_allowed(origin))
    {
        return refused(StatusCode::FORBIDDEN, "origin not allowed\n");
    }
    if options.max_connections.is_some_and(|max| handle.live_sockets() >= max) {
        return refused(StatusCode::SERVICE_UNAVAILABLE, "too many connections\n");
    }
    let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
        return refused(StatusCode::UPGRADE_REQUIRED, "connection not upgradable\n");
    };
    // Compression only where roomcast frames the socket itself (its own listener).
    let fast = parts.extensions.get::<FastPath>().is_some();
    let deflate =
        (fast && options.compression).then(|| deflate::negotiate(&parts.headers)).flatten();
    let mut response = response;
    let agreed = deflate.map(|(agreed, header)| {
        response.headers_mut().insert(header::SEC_WEBSOCKET_EXTENSIONS, header);
        agreed
    });
    let request = handle
        .keeps_requests()
        .then(|| Arc::new(UpgradeRequest::new(parts.method, parts.uri, parts.headers, peer)));
    let admit = match handle.on_connect(&request).await {
        Ok(admit) => admit,
        Err(Refuse { how: Refusal::Status(status, message) }) => return refused(status, &message),
        Err(Refuse { how: Refusal::Close(code, reason) }) => {
            Admit { close: Some((code, reason)), ..Admit::default() }
        }
    };
    if let Some(Err(e)) = admit.identity.as_ref().map(roomcast_core::Identity::check) {
        // The request carried a user id the hub cannot take (an over-long cookie, say): no
        // socket is opened for it, and the client is told why.
        tracing::warn!(error = %e, "on_connect admitted an identity the hub refuses");
        return refused(StatusCode::BAD_REQUEST, &format!("{e}\n"));
    }
    let plain = admit.identity.is_none() && admit.rooms.is_empty() && admit.close.is_none();
    let arrival = (request.is_some() || !plain).then(|| Box::new(Arrival { request, admit }));
    tokio::spawn(take_over(on_upgrade, handle, arrival, agreed));
    response
}

/// Marks a request that came through roomcast's own listener, whose upgraded stream is a plain
/// TCP stream roomcast frames itself (so compression can be offered).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FastPath;

fn refused(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message.to_owned())));
    *response.status_mut() = status;
    response
}

/// Waits for the upgrade to complete, then serves the socket until it closes (a plain TCP
/// stream in a task of its own).
async fn take_over(
    on_upgrade: OnUpgrade,
    handle: Handle,
    arrival: Option<Box<Arrival>>,
    deflate: Option<Agreed>,
) {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            return;
        }
    };
    match upgraded.downcast::<TokioIo<TcpStream>>() {
        // A task of its own, so that the connection does not keep this future's upgrade state
        // for its whole life.
        Ok(parts) => {
            let (stream, leftover) = (parts.io.into_inner(), parts.read_buf);
            tokio::spawn(handle.serve_tcp_as(stream, leftover, arrival, deflate));
        }
        // Boxed: this path is rare, and every connection's task is as large as its largest
        // state.
        Err(_) if deflate.is_some() => {
            // Not a plain TCP stream after all: nothing here can inflate what the client sends.
            tracing::error!("compression agreed on a stream roomcast does not frame; dropped");
        }
        Err(upgraded) => Box::pin(serve_other(upgraded, handle, arrival)).await,
    }
}

/// Serves an upgraded stream that is not a plain TCP stream through tungstenite.
async fn serve_other(
    upgraded: hyper::upgrade::Upgraded,
    handle: Handle,
    arrival: Option<Box<Arrival>>,
) {
    let config = websocket_config(handle.options());
    let socket =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    handle.serve_socket_as(socket, arrival).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.clone(), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn the_accept_key_is_the_one_rfc_6455_gives_for_its_sample_key() {
        let headers = request(&[
            (header::UPGRADE, "websocket"),
            (header::CONNECTION, "keep-alive, Upgrade"),
            (header::SEC_WEBSOCKET_VERSION, "13"),
            (header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        let response = respond(&Method::GET, &headers);
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            response.headers()[header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn a_plain_get_or_another_version_is_refused_with_a_status() {
        assert_eq!(respond(&Method::GET, &HeaderMap::new()).status(), StatusCode::UPGRADE_REQUIRED);
        let old = request(&[
            (header::UPGRADE, "websocket"),
            (header::CONNECTION, "Upgrade"),
            (header::SEC_WEBSOCKET_VERSION, "8"),
            (header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        assert_eq!(respond(&Method::GET, &old).status(), StatusCode::UPGRADE_REQUIRED);
        let no_key = request(&[
            (header::UPGRADE, "websocket"),
            (header::CONNECTION, "Upgrade"),
            (header::SEC_WEBSOCKET_VERSION, "13"),
        ]);
        assert_eq!(respond(&Method::GET, &no_key).status(), StatusCode::BAD_REQUEST);
    }
}
