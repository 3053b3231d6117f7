//! Loopback ports for the servers the tests start, each handed out once.
//!
//! Binding port 0 and releasing it ("a port that was free a moment ago") races: between the
//! release and the server's own bind, a test running in parallel may be handed the same port, or
//! an outgoing connection may take it as its local port. One server then fails to bind and exits
//! while the other answers in its place, and a test talks to, stops or counts a process that is
//! not the one it thinks.
//!
//! A [`Reservation`] keeps the port bound (with `SO_REUSEADDR`, not listening) for as long as the
//! server may use it. The kernel hands a bound port to no other `bind(0)` and to no outgoing
//! connection, while the server (`roomcast` through tokio, and `redis-server`, both bind with
//! `SO_REUSEADDR`) can still bind and listen on it, and bind it again after a restart.

use std::net::{Ipv4Addr, SocketAddr};

use socket2::{Domain, Socket, Type};

/// A loopback port kept for one server; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    // Held, never used: its bind is the reservation.
    _socket: Socket,
    addr: SocketAddr,
}

impl Reservation {
    /// Reserves a free port on 127.0.0.1.
    ///
    /// # Panics
    /// If no socket can be bound (the machine is out of descriptors or ports).
    pub fn new() -> Self {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
        socket.set_reuse_address(true).expect("SO_REUSEADDR");
        socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into()).expect("a free port");
        let addr = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .expect("a bound socket has an address");
        Self { _socket: socket, addr }
    }

    /// The reserved address (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The reserved port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Default for Reservation {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_reserved_port_is_never_handed_out_again_while_held() {
        let held: Vec<Reservation> = (0..200).map(|_| Reservation::new()).collect();
        let ports: HashSet<u16> = held.iter().map(Reservation::port).collect();
        assert_eq!(ports.len(), held.len(), "every reservation has its own port");
        for _ in 0..2000 {
            let other = TcpListener::bind("127.0.0.1:0").expect("a port");
            let port = other.local_addr().expect("an address").port();
            assert!(!ports.contains(&port), "bind(0) handed out reserved port {port}");
        }
    }

    #[test]
    fn a_server_binding_with_reuse_address_listens_on_a_reserved_port_and_again_after_a_restart() {
        let reservation = Reservation::new();
        for _ in 0..2 {
            let server = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
            server.set_reuse_address(true).expect("SO_REUSEADDR");
            server.bind(&reservation.addr().into()).expect("binds the reserved port");
            server.listen(16).expect("listens on it");
            TcpStream::connect(reservation.addr()).expect("a client reaches it");
        }
    }

    #[test]
    fn a_listener_without_reuse_address_cannot_take_a_reserved_port() {
        let reservation = Reservation::new();
        let other = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
        assert!(other.bind(&reservation.addr().into()).is_err());
    }
}
