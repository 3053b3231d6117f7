//! The HTTP request that opened a connection: path, query, headers, cookies, peer address.

use std::net::SocketAddr;

use hyper::header::{self, HeaderMap};
use hyper::{Method, Uri};

/// The upgrade request of a connection, as the application sees it in
/// [`on_connect`](crate::Builder::on_connect) and in every handler ([`Socket::request`](crate::Socket::request)).
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Option<SocketAddr>,
}

impl UpgradeRequest {
    pub(crate) fn new(
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Self {
        Self { method, uri, headers, peer }
    }

    /// The request's method (`GET` for every WebSocket upgrade).
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path, e.g. `/room/lobby`.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The raw query string, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    /// The value of query parameter `name`, percent-decoded (`+` is a space); the first if it
    /// is given more than once.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.uri.query()?;
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key) == name).then(|| decode(value))
        })
    }

    /// Every header.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header's value, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The value of cookie `name`, from every `Cookie` header.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(
            |line| {
                line.split(';').find_map(|pair| {
                    let (key, value) = pair.trim().split_once('=')?;
                    (key == name).then(|| value.trim_matches('"'))
                })
            },
        )
    }

    /// The client's address, as the TCP connection saw it (a proxy's, behind one).
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }
}

/// Percent-decodes a query component; bytes that do not decode stay as they are.
fn decode(component: &str) -> String {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

    fn request(uri: &str, cookies: &[&'static str]) -> UpgradeRequest {
        let mut headers = HeaderMap::new();
        for c in cookies {
            headers.append(header::COOKIE, HeaderValue::from_static(c));
        }
        let uri = uri.parse().unwrap_or_else(|e| panic!("{e}"));
        UpgradeRequest::new(Method::GET, uri, headers, None)
    }

    #[test]
    fn path_query_parameters_and_cookies_are_read_as_sent() {
        let r = request(
            "/room/lobby?token=a%2Bb&name=Ann+Lee&flag&token=second",
            &["theme=dark; session=\"abc\"", "other=1"],
        );
        assert_eq!(r.path(), "/room/lobby");
        assert_eq!(r.query_param("token").as_deref(), Some("a+b"));
        assert_eq!(r.query_param("name").as_deref(), Some("Ann Lee"));
        assert_eq!(r.query_param("flag").as_deref(), Some(""));
        assert_eq!(r.query_param("missing"), None);
        assert_eq!(r.cookie("session"), Some("abc"));
        assert_eq!(r.cookie("other"), Some("1"));
        assert_eq!(r.cookie("none"), None);
    }

    #[test]
    fn a_broken_percent_escape_stays_as_it_was() {
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(decode("%4"), "%4");
        assert_eq!(decode("%41"), "A");
    }
}
