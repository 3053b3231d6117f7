//! A connection's typed state: values of the application's own types, one per type, kept with
//! the connection for as long as it lives ([`Socket::extensions`](crate::Socket::extensions), the
//! [`Extension`](crate::Extension) extractor), as socketioxide's `socket.extensions` and axum's
//! `Extension<T>`.

use std::sync::{Arc, Mutex, MutexGuard};

/// Values of the application's types, one per type, kept with one connection. Cheap to clone:
/// every clone (every [`Socket`](crate::Socket) of the connection) sees the same values.
///
/// They live on the application's side, in the connection's lane: reading or writing one never
/// waits for the hub task. They are not shared across instances, and presence and queries do not
/// see them (that is what the JSON metadata is for,
/// [`Handle::set_metadata`](crate::Handle::set_metadata)). They are dropped after the
/// connection's `on_disconnect` hook has run.
#[derive(Clone, Default)]
pub struct Extensions(Arc<Mutex<http::Extensions>>);

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions").field("len", &self.lock().len()).finish()
    }
}

impl Extensions {
    fn lock(&self) -> MutexGuard<'_, http::Extensions> {
        // Never held across an await or a call into the application: recover from a panic in
        // a value's Clone or Drop.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps `value`, replacing (and returning) the value of its type kept before.
    pub fn insert<T: Clone + Send + Sync + 'static>(&self, value: T) -> Option<T> {
        self.lock().insert(value)
    }

    /// A copy of the value of type `T`, if one is kept.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.lock().get::<T>().cloned()
    }

    /// Takes the value of type `T` out.
    pub fn remove<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.lock().remove::<T>()
    }

    /// Changes the value of type `T` in place (`f` runs under the connection's lock: keep it
    /// short, and do not call into roomcast from it); `None` if none is kept.
    pub fn update<T: Clone + Send + Sync + 'static, R>(
        &self,
        f: impl FnOnce(&mut T) -> R,
    ) -> Option<R> {
        self.lock().get_mut::<T>().map(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_per_type_shared_by_every_clone() {
        let one = Extensions::default();
        let two = one.clone();
        assert_eq!(one.insert(3u32), None);
        assert_eq!(two.insert(4u32), Some(3));
        assert_eq!(one.update(|n: &mut u32| *n += 1), Some(()));
        assert_eq!(two.get::<u32>(), Some(5));
        assert_eq!(one.get::<String>(), None);
        assert_eq!(two.remove::<u32>(), Some(5));
        assert_eq!(one.get::<u32>(), None);
    }
}
