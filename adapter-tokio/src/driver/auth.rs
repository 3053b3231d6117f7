//! Authentication off the hub task: the authenticator runs in a task of its own per request, and
//! its decision comes back as a command.

use super::*;

impl Driver {
    /// Runs the authenticator in its own task and feeds its decision back as a call.
    pub(super) fn authenticate(&mut self, request: AuthRequest) {
        let (Some(auth), Some(commands)) = (self.auth.clone(), self.commands.upgrade()) else {
            return;
        };
        tokio::spawn(async move {
            let conn = request.conn;
            let decision = auth.authenticate(request).await;
            let call: Box<dyn FnOnce(&mut Driver) + Send> =
                Box::new(move |d: &mut Driver| d.decide(conn, decision));
            let _ = commands.send(ToHub::Call(call)).await;
        });
    }

    /// Runs the authenticator on a `refresh` in its own task, and applies its decision: the
    /// connection's credentials are renewed, or the refresh is refused (the connection keeps its
    /// current ones until they expire).
    pub(super) fn refresh(&mut self, request: AuthRequest, id: Option<RequestId>) {
        let (Some(auth), Some(commands)) = (self.auth.clone(), self.commands.upgrade()) else {
            return;
        };
        tokio::spawn(async move {
            let conn = request.conn;
            let decision = auth.authenticate(request).await;
            let call: Box<dyn FnOnce(&mut Driver) + Send> = Box::new(move |d: &mut Driver| {
                let now = Instant::now();
                let id = id.as_ref();
                let _ = match decision {
                    Ok(Admit { identity, .. }) => {
                        d.hub.accept_refresh(conn, identity.unwrap_or_default(), id, now)
                    }
                    Err(denied) => d.hub.reject_refresh(conn, denied.reason(), id, now),
                };
            });
            let _ = commands.send(ToHub::Call(call)).await;
        });
    }

    /// Applies an authenticator's decision. The connection may have timed out or gone
    /// meanwhile: nothing to decide then.
    pub(super) fn decide(&mut self, conn: ConnId, decision: Result<Admit, AuthDenied>) {
        let now = Instant::now();
        match decision {
            Ok(Admit { close: Some((code, reason)), .. }) => {
                let _ = self.hub.close(conn, code, reason, now);
            }
            Ok(Admit { identity, rooms, close: None }) => {
                if self.hub.accept_auth(conn, identity.unwrap_or_default(), now).is_ok() {
                    for room in &rooms {
                        if let Err(e) = self.hub.join(conn, room, now) {
                            tracing::warn!(%conn, %room, error = %e, "authenticate: room not joined");
                        }
                    }
                }
            }
            Err(denied) => {
                let _ = self.hub.deny_auth(conn, denied, now);
            }
        }
    }
}
