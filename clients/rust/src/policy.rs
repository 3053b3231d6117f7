//! What a close code means for the next attempt.

/// What the client does after a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reconnect after the backoff.
    Retry,
    /// Reconnect after at least the pause: the server asked to slow down.
    Pause,
    /// Get a new token from the token source, then reconnect; stop without one (or, after a
    /// 4003, when it gives the rejected token again).
    NewToken,
    /// Do not reconnect.
    Stop,
}

/// The policy per close code:
/// - 1000 (closed on purpose by the server or its API), 1002, 1003, 1007 (the client broke the
///   protocol: retrying repeats it): stop;
/// - 4001 (authentication timeout), 4003 (rejected), 4004 (token expired): a new token;
/// - 4008 (rate limited), 4009 (overloaded), 1013 (try again later): pause, then retry;
/// - everything else (network loss 1006, shutdown 1001, 1011, heartbeat 4002, slow consumer
///   4005, ...): retry with backoff.
pub fn retry_policy(code: u16) -> Retry {
    match code {
        1000 | 1002 | 1003 | 1007 => Retry::Stop,
        4001 | 4003 | 4004 => Retry::NewToken,
        4008 | 4009 | 1013 => Retry::Pause,
        _ => Retry::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_map_to_the_documented_policy() {
        for code in [1000, 1002, 1003, 1007] {
            assert_eq!(retry_policy(code), Retry::Stop, "{code}");
        }
        for code in [4001, 4003, 4004] {
            assert_eq!(retry_policy(code), Retry::NewToken, "{code}");
        }
        for code in [4008, 4009, 1013] {
            assert_eq!(retry_policy(code), Retry::Pause, "{code}");
        }
        for code in [1001, 1006, 1011, 4002, 4005] {
            assert_eq!(retry_policy(code), Retry::Retry, "{code}");
        }
    }
}
