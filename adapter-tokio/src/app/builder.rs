//! Configuring and starting an instance: options, the bus, authentication, and the application's
//! handlers and hooks.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use roomcast_core::{DisconnectReason, Hub, HubConfig, PublishPolicy, PublishRequest, RoomPolicy};
use tokio::sync::mpsc;

use crate::app::auth::{AuthFuture, AuthRequest, Authenticator};
use crate::app::context::Socket;
use crate::app::dispatch::Dispatcher;
use crate::app::handle::{Error, Handle, Shared};
use crate::app::handler::{self, Handler, StateMap};
use crate::app::on_connect::{Admit, Refuse};
use crate::app::registry::App;
use crate::app::router::{Pattern, PatternError, Router};
use crate::bus::Bus;
use crate::bus::inbox::BusInbox;
use crate::bus::local::LocalBus;
use crate::driver::Driver;
use crate::driver::events::{self, Events};
use crate::options::Options;
use crate::transport::budget::Budget;
use crate::transport::request::UpgradeRequest;
use crate::transport::tracker::Tracker;
use crate::transport::write_buffer::Limits;

type BusFactory = Box<dyn FnOnce(BusInbox) -> Box<dyn Bus> + Send>;

/// Entry point: `Roomcast::builder()`, then handlers and options, then `start()`.
#[derive(Debug)]
pub struct Roomcast;

impl Roomcast {
    /// A builder with default options, the in-process bus, no authenticator and no handlers.
    pub fn builder() -> Builder {
        Builder {
            options: Options::default(),
            bus: None,
            auth: None,
            router: Router::default(),
            paths: HashMap::new(),
            on_connect: None,
            on_connected: None,
            on_disconnect: None,
            on_publish: None,
            state: StateMap::default(),
        }
    }
}

/// Configures and starts one instance.
///
/// ```no_run
/// use roomcast_tokio::{Admit, Data, Refuse, Roomcast, Socket, UpgradeRequest};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let (handle, _events) = Roomcast::builder()
///     // The room is in the URL, as in /room/lobby.
///     .on_connect(|request: UpgradeRequest| async move {
///         match request.path().strip_prefix("/room/") {
///             Some(room) if !room.is_empty() => Ok(Admit::new().join(room)),
///             _ => Err(Refuse::status(404, "no such room")),
///         }
///     })
///     .on("chat:message", |socket: Socket, Data(text): Data<String>| async move {
///         for room in socket.rooms().await? {
///             socket.to(room).emit("chat:message", &text).await?;
///         }
///         Ok(())
///     })
///     .start()?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// roomcast_tokio::serve(listener, handle).await?;
/// # Ok(()) }
/// ```
pub struct Builder {
    options: Options,
    bus: Option<BusFactory>,
    auth: Option<Arc<dyn Authenticator>>,
    router: Router<handler::BoxHandler>,
    paths: HashMap<String, Router<handler::BoxHandler>>,
    on_connect: Option<crate::app::on_connect::ConnectHook>,
    on_connected: Option<crate::app::registry::ConnectedHook>,
    on_disconnect: Option<crate::app::registry::DisconnectHook>,
    on_publish: Option<crate::app::registry::PublishHook>,
    state: StateMap,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder").field("options", &self.options).finish_non_exhaustive()
    }
}

impl Builder {
    /// Sets every option.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Sets the bus: `make` receives this instance's inbox and returns its [`Bus`].
    /// Default: a private in-process bus; the instance is then standalone
    /// ([`HubConfig::standalone`](roomcast_core::HubConfig::standalone)) and uses none of it.
    pub fn bus<B: Bus>(mut self, make: impl FnOnce(BusInbox) -> B + Send + 'static) -> Self {
        self.bus = Some(Box::new(move |inbox| Box::new(make(inbox)) as Box<dyn Bus>));
        self
    }

    /// Sets what clients may do by themselves with the rooms matching `pattern` (`*` matches any
    /// run of characters: `"chat:*"`, `"team:*:chat"`; the most specific pattern wins): join and
    /// leave them, publish into them, ask who is in them. See [`RoomPolicy`].
    ///
    /// ```no_run
    /// use roomcast_tokio::roomcast_core::{PublishPolicy, RoomPolicy};
    /// use roomcast_tokio::Roomcast;
    ///
    /// # fn run() -> Result<(), roomcast_tokio::Error> {
    /// let (handle, _events) = Roomcast::builder()
    ///     // Clients join and publish in chat rooms by themselves...
    ///     .room_policy("chat:*", RoomPolicy::open())
    ///     // ...read announcements, which only the server writes...
    ///     .room_policy("news:*", RoomPolicy { publish: PublishPolicy::Server, ..RoomPolicy::open() })
    ///     // ...and the application puts them in every other room.
    ///     .default_room_policy(RoomPolicy::server_only())
    ///     .start()?;
    /// # Ok(()) }
    /// ```
    pub fn room_policy(mut self, pattern: &str, policy: RoomPolicy) -> Self {
        self.options.hub.rooms.set(pattern, policy);
        self
    }

    /// Sets the policy of the rooms that match no [`room_policy`](Self::room_policy) pattern.
    ///
    /// Without it: an application that registers a handler or a hook ([`on`](Self::on),
    /// [`on_connect`](Self::on_connect), [`on_publish`](Self::on_publish), ...) gets
    /// [`RoomPolicy::server_only`] (clients join, leave and publish nothing by themselves; with
    /// [`on_publish`](Self::on_publish), members publish after its check), because its handlers
    /// decide who goes where. One that registers none (it only uses the [`Handle`], or is
    /// `roomcast serve`) gets [`RoomPolicy::open`], the protocol's default. Open every room with
    /// `.default_room_policy(RoomPolicy::open())`.
    pub fn default_room_policy(mut self, policy: RoomPolicy) -> Self {
        self.options.hub.rooms.set_default(policy);
        self
    }

    /// Decides `authenticate` frames with `auth` instead of handing them to the application.
    pub fn authenticator(mut self, auth: impl Authenticator) -> Self {
        self.auth = Some(Arc::new(auth));
        self
    }

    /// Decides `authenticate` frames with an async function of the request: `Ok(identity)` (or
    /// an [`Admit`]) accepts (the client gets `connected`), `Err(reason)` rejects (close 4003;
    /// or any [`AuthDenied`](crate::AuthDenied)). A decision that takes longer than
    /// 3 × `auth_timeout` is overtaken by close 4001.
    pub fn on_authenticate<F, Fut, A, D>(self, decide: F) -> Self
    where
        F: Fn(AuthRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<A, D>> + Send + 'static,
        A: Into<Admit> + 'static,
        D: Into<crate::AuthDenied> + 'static,
    {
        self.authenticator(FnAuthenticator(decide, std::marker::PhantomData))
    }

    /// Routes client events matching `pattern` to `handler`. A pattern is an event name
    /// (`"chat:message"`), or `/`-separated segments with parameters (`"game/:type/:action"`,
    /// `"files/*path"`); the most specific pattern wins, see [`Pattern`]. Its arguments are
    /// extractors ([`Socket`], [`Data`](crate::Data), [`Params`](crate::Params),
    /// [`State`](crate::State), [`Id`](crate::Id), ...), and its return value answers the
    /// request ([`IntoReply`](crate::IntoReply)).
    ///
    /// # Panics
    /// If `pattern` does not parse or was registered already: a programming error, found at
    /// start-up. [`try_on`](Self::try_on) returns the error instead.
    pub fn on<H: Handler<Args>, Args: 'static>(self, pattern: &str, handler: H) -> Self {
        match self.try_on(pattern, handler) {
            Ok(builder) => builder,
            Err(e) => panic!("roomcast: route {pattern:?}: {e}"),
        }
    }

    /// [`on`](Self::on), returning an error for a bad or repeated pattern.
    pub fn try_on<H: Handler<Args>, Args: 'static>(
        mut self,
        pattern: &str,
        handler: H,
    ) -> Result<Self, PatternError> {
        let pattern = Pattern::parse(pattern)?;
        self.router
            .add(pattern, handler::boxed(handler))
            .map_err(|p| PatternError::Duplicate(p.as_str().to_owned()))?;
        Ok(self)
    }

    /// Routes client events named `event` whose frame carries a `path` matching `path_pattern`
    /// to `handler`, as moost's `@Message("join", "/chat/:room")`: the path's parameters are the
    /// handler's [`Params`](crate::Params). A leading `/` is ignored on both sides. An event whose
    /// path matches none of its path routes (or that has no path) is routed on its name.
    ///
    /// # Panics
    /// If `path_pattern` does not parse or was registered already for `event`.
    pub fn on_path<H: Handler<Args>, Args: 'static>(
        mut self,
        event: &str,
        path_pattern: &str,
        handler: H,
    ) -> Self {
        let source = path_pattern.strip_prefix('/').unwrap_or(path_pattern);
        let added = Pattern::parse(source).and_then(|pattern| {
            self.paths
                .entry(event.to_owned())
                .or_default()
                .add(pattern, handler::boxed(handler))
                .map_err(|p| PatternError::Duplicate(p.as_str().to_owned()))
        });
        if let Err(e) = added {
            panic!("roomcast: route {event:?} on path {path_pattern:?}: {e}");
        }
        self
    }

    /// Routes every client event that no pattern matches to `handler`. Without a fallback, such
    /// an event is answered with an error of code `unknown_event`.
    pub fn fallback<H: Handler<Args>, Args: 'static>(mut self, handler: H) -> Self {
        self.router.fallback(handler::boxed(handler));
        self
    }

    /// Adds a value of the application's state, for the [`State`](crate::State) extractor (one
    /// value per type; a second of the same type replaces the first).
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// Runs `hook` on every WebSocket upgrade request, before it is answered: it may refuse
    /// with an HTTP status ([`Refuse`]), or let the connection in ([`Admit`]): as a user
    /// identified at the upgrade (a cookie, a header, a token in the query), with metadata,
    /// joining rooms (the room named in the URL).
    pub fn on_connect<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(UpgradeRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Admit, Refuse>> + Send + 'static,
    {
        self.on_connect =
            Some(Arc::new(move |request: Arc<UpgradeRequest>| Box::pin(hook((*request).clone()))));
        self
    }

    /// Runs `hook` with the live [`Socket`] once a connection is in: authenticated (at the
    /// upgrade, or by its `authenticate`), sent `connected`, and in the rooms [`Admit::join`]
    /// named, as socket.io's `io.on("connection", socket => ..)`. It runs in the connection's
    /// lane, before any handler of its events: the place to greet it, join it to its rooms, and
    /// keep its state in [`Socket::extensions`].
    pub fn on_connected<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_connected = Some(Arc::new(move |socket| Box::pin(hook(socket))));
        self
    }

    /// Runs `hook` when a connection is gone, with the reason, after every handler of its
    /// events has run. Never skipped: an application's own maps of connections stay true.
    pub fn on_disconnect<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_disconnect = Some(Arc::new(move |socket, reason| Box::pin(hook(socket, reason))));
        self
    }

    /// Decides every client `publish` into a room whose policy is
    /// [`PublishPolicy::Checked`] before it is fanned out (a permission check, as Centrifugo's
    /// publish proxy): `Ok(())` lets it go to the room as asked, an error refuses it (the client
    /// gets it as an `error` frame with its request's `id`). The hub checks first what it always
    /// checks (membership, the event name), so the hook sees only valid publishes of members.
    /// Runs in the connection's lane, in order with its handlers. Without a
    /// [`default_room_policy`](Self::default_room_policy), registering it makes the default
    /// [`RoomPolicy::server_only`] with publishes `Checked`.
    pub fn on_publish<F, Fut>(mut self, decide: F) -> Self
    where
        F: Fn(Socket, PublishRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), crate::HandlerError>> + Send + 'static,
    {
        self.on_publish = Some(Arc::new(move |socket, request| Box::pin(decide(socket, request))));
        self
    }

    /// Whether the application registered a handler or a hook of its own.
    fn has_handlers(&self) -> bool {
        !self.router.is_empty()
            || !self.paths.is_empty()
            || self.on_connect.is_some()
            || self.on_connected.is_some()
            || self.on_disconnect.is_some()
            || self.on_publish.is_some()
    }

    /// Starts the hub task (and, with handlers, the task that runs them). Must be called inside
    /// a tokio runtime.
    pub fn start(self) -> Result<(Handle, Events), Error> {
        let options = self.options_in_effect();
        let unix_ms =
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let hub = Hub::new(options.hub.clone(), Instant::now(), unix_ms)?;
        let app = App {
            router: self.router,
            paths: self.paths,
            on_connect: self.on_connect,
            on_connected: self.on_connected,
            on_disconnect: self.on_disconnect,
            on_publish: self.on_publish,
            state: Arc::new(self.state),
        };
        let auth_wants_request = self.auth.as_ref().is_some_and(|auth| auth.wants_request());
        let keeps_requests = app.routes_events() || app.on_connect.is_some() || auth_wants_request;
        let on_connect = app.on_connect.clone();
        let (commands, inbox) = mpsc::channel(options.command_queue.max(1));
        let (events_tx, events) = events::events(options.event_queue);
        let bus_inbox = BusInbox { commands: commands.downgrade() };
        let bus = match self.bus {
            Some(make) => make(bus_inbox),
            // Standalone (set above): the hub outputs no interest and publishes nothing, so
            // this private bus keeps nothing.
            None => Box::new(LocalBus::new().port(bus_inbox)),
        };
        let tracker = Arc::new(Tracker::default());
        // A burst the rate limit lets through must not overflow the handlers' queue: 4008 is
        // the answer to a client over its rate, 4009 only to handlers that fall behind.
        let burst = options.hub.rate_limit.map_or(0, |limit| limit.burst as usize);
        let max_pending = options.max_pending_events.max(burst + 1);
        let budget = Arc::new(Budget::new(options.max_queued_bytes.max(1)));
        let driver =
            (hub, bus, events_tx.clone(), self.auth, commands.downgrade(), tracker.clone());
        let mut driver = new_driver(driver, &options, budget.clone());
        let handle = Handle::new(Arc::new(Shared::new(
            commands,
            tracker,
            options,
            on_connect,
            keeps_requests,
            budget,
        )));
        if app.routes_events() {
            let app = Arc::new(app);
            let (to_app, from_hub) = mpsc::unbounded_channel();
            driver.route_to(to_app);
            let dispatcher = Dispatcher::new(app, handle.downgrade(), Some(events_tx), max_pending);
            tokio::spawn(dispatcher.run(from_hub));
        }
        tokio::spawn(driver.run(inbox));
        Ok((handle, events))
    }
}

impl Builder {
    /// The options the instance runs with: a fresh server id and hash seed where the
    /// application left the core's defaults, standalone without a bus, and the default room
    /// policy of an application with handlers.
    fn options_in_effect(&self) -> Options {
        let mut options = self.options.clone();
        let defaults = HubConfig::default();
        if options.hub.server_id == defaults.server_id {
            options.hub.server_id = uuid::Uuid::new_v4().to_string();
        }
        if options.hub.hash_seed == defaults.hash_seed {
            options.hub.hash_seed = uuid::Uuid::new_v4().as_u64_pair().0;
        }
        // With no bus, nothing can hear a publish: the hub skips encoding one per send.
        options.hub.standalone |= self.bus.is_none();
        if !options.hub.rooms.has_default() && self.has_handlers() {
            // The application's handlers decide who goes where: clients do nothing by
            // themselves unless it opens rooms.
            let publish = if self.on_publish.is_some() {
                PublishPolicy::Checked
            } else {
                PublishPolicy::Server
            };
            options.hub.rooms.set_default(RoomPolicy { publish, ..RoomPolicy::server_only() });
        }
        options
    }
}

/// What the hub task starts with.
type DriverParts = (
    Hub,
    Box<dyn Bus>,
    events::EventSender,
    Option<Arc<dyn Authenticator>>,
    mpsc::WeakSender<crate::driver::ToHub>,
    Arc<Tracker>,
);

/// The hub task, set up as the options say.
fn new_driver(parts: DriverParts, options: &Options, budget: Arc<Budget>) -> Driver {
    let (hub, bus, events, auth, commands, tracker) = parts;
    let limits =
        Limits { frames: options.queue_frames.max(1), bytes: options.max_write_buffer_bytes() };
    let mut driver = Driver::new(hub, bus, events, auth, commands, tracker, limits);
    driver.budget(budget);
    driver.write_threads(options.write_threads);
    if options.compression {
        driver.compression(options.compression_threshold);
    }
    driver
}

/// An [`Authenticator`] from an async function.
struct FnAuthenticator<F, A, D>(F, std::marker::PhantomData<fn() -> (A, D)>);

impl<F, Fut, A, D> Authenticator for FnAuthenticator<F, A, D>
where
    F: Fn(AuthRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<A, D>> + Send + 'static,
    A: Into<Admit> + 'static,
    D: Into<crate::AuthDenied> + 'static,
{
    fn authenticate(&self, request: AuthRequest) -> AuthFuture<'_> {
        let decision = (self.0)(request);
        Box::pin(async move { decision.await.map(Into::into).map_err(Into::into) })
    }
}
