//! The route table: which handler an event goes to. Sans-IO data, tested with properties.
//!
//! A pattern is split at `/` into segments. A segment is literal (`chat`), a parameter (`:room`,
//! which matches one non-empty segment and names it), or, last only, a rest parameter (`*path`,
//! which matches one or more segments, joined with `/`). An event name without `/` is one
//! segment: `on("chat:message", ..)` matches exactly that name, as in socket.io.
//!
//! When several patterns match, the most specific wins, segment by segment from the left: a
//! literal beats a parameter, which beats a rest parameter; at equal specificity, the pattern
//! registered first wins. When none matches, the fallback (if any) takes the event.

use std::fmt;

/// A pattern could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// The pattern is empty, or has an empty segment (`a//b`, a leading or trailing `/`).
    #[error("pattern {0:?} has an empty segment")]
    EmptySegment(String),
    /// A `:` or `*` segment without a name.
    #[error("pattern {0:?} has a parameter without a name")]
    UnnamedParameter(String),
    /// A `*rest` segment that is not the last.
    #[error("pattern {0:?} has a rest parameter before its end")]
    RestNotLast(String),
    /// Two parameters with one name.
    #[error("pattern {0:?} names a parameter twice")]
    DuplicateName(String),
    /// The same pattern was registered already (the first would always win).
    #[error("pattern {0:?} is registered already")]
    Duplicate(String),
}

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Rest(String),
}

impl Segment {
    /// Lower is more specific.
    fn rank(&self) -> u8 {
        match self {
            Self::Literal(_) => 0,
            Self::Param(_) => 1,
            Self::Rest(_) => 2,
        }
    }
}

/// A parsed route pattern, e.g. `game/:type/:action` or `files/*path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    segments: Vec<Segment>,
}

impl Pattern {
    /// Parses a pattern.
    pub fn parse(source: &str) -> Result<Self, PatternError> {
        let err = |f: fn(String) -> PatternError| f(source.to_owned());
        let parts: Vec<&str> = source.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        let mut names: Vec<&str> = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let segment = if part.is_empty() {
                return Err(err(PatternError::EmptySegment));
            } else if let Some(name) = part.strip_prefix(':') {
                Segment::Param(named(name, &mut names).map_err(err)?)
            } else if let Some(name) = part.strip_prefix('*') {
                if i + 1 != parts.len() {
                    return Err(err(PatternError::RestNotLast));
                }
                Segment::Rest(named(name, &mut names).map_err(err)?)
            } else {
                Segment::Literal((*part).to_owned())
            };
            segments.push(segment);
        }
        Ok(Self { source: source.to_owned(), segments })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The parameters `name` binds, if it matches.
    fn matches(&self, name: &str) -> Option<Params> {
        let mut params = Params::default();
        let mut rest = Some(name);
        for (i, segment) in self.segments.iter().enumerate() {
            let input = rest?;
            if let Segment::Rest(key) = segment {
                if input.split('/').any(str::is_empty) {
                    return None;
                }
                params.0.push((key.clone(), input.to_owned()));
                rest = None;
                debug_assert_eq!(i + 1, self.segments.len());
                break;
            }
            let (head, tail) = match input.split_once('/') {
                Some((head, tail)) => (head, Some(tail)),
                None => (input, None),
            };
            match segment {
                Segment::Literal(literal) if literal == head => {}
                Segment::Param(key) if !head.is_empty() => {
                    params.0.push((key.clone(), head.to_owned()));
                }
                _ => return None,
            }
            rest = tail;
        }
        rest.is_none().then_some(params)
    }

    /// What the pattern matches, whatever its parameters are named.
    fn shape(&self) -> Vec<(u8, Option<&str>)> {
        fn literal(s: &Segment) -> Option<&str> {
            match s {
                Segment::Literal(l) => Some(l.as_str()),
                Segment::Param(_) | Segment::Rest(_) => None,
            }
        }
        self.segments.iter().map(|s| (s.rank(), literal(s))).collect()
    }

    /// The specificity key: segment ranks from the left (lower sorts first, wins), then more
    /// segments first.
    fn specificity(&self) -> (Vec<u8>, std::cmp::Reverse<usize>) {
        (self.segments.iter().map(Segment::rank).collect(), std::cmp::Reverse(self.segments.len()))
    }
}

fn named<'a>(
    name: &'a str,
    names: &mut Vec<&'a str>,
) -> Result<String, fn(String) -> PatternError> {
    if name.is_empty() {
        return Err(PatternError::UnnamedParameter);
    }
    if names.contains(&name) {
        return Err(PatternError::DuplicateName);
    }
    names.push(name);
    Ok(name.to_owned())
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The parameters a pattern bound, in pattern order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every parameter, in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many parameters there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Routes to values of `T` (handlers, in the application layer), with a fallback.
#[derive(Debug, Clone)]
pub(crate) struct Router<T> {
    /// Kept sorted by specificity, most specific first; stable, so registration order breaks
    /// ties.
    routes: Vec<(Pattern, T)>,
    fallback: Option<T>,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Self { routes: Vec::new(), fallback: None }
    }
}

/// What an event was routed to.
#[derive(Debug)]
pub(crate) struct Route<'a, T> {
    pub(crate) target: &'a T,
    /// The pattern that matched; `None` for the fallback.
    #[cfg_attr(not(test), allow(dead_code))] // the tests check which pattern won
    pub(crate) pattern: Option<&'a Pattern>,
    pub(crate) params: Params,
}

impl<T> Router<T> {
    /// Adds a route. A later route matching exactly what an earlier one matches (the same
    /// pattern, perhaps with other parameter names) would never be chosen, so it is refused.
    pub(crate) fn add(&mut self, pattern: Pattern, target: T) -> Result<(), Pattern> {
        if self.routes.iter().any(|(p, _)| p.shape() == pattern.shape()) {
            return Err(pattern);
        }
        let key = pattern.specificity();
        let at = self.routes.partition_point(|(p, _)| p.specificity() <= key);
        self.routes.insert(at, (pattern, target));
        Ok(())
    }

    /// Sets the fallback, for events no pattern matches.
    pub(crate) fn fallback(&mut self, target: T) {
        self.fallback = Some(target);
    }

    /// The route for `event`: the most specific matching pattern, else the fallback.
    pub(crate) fn find(&self, event: &str) -> Option<Route<'_, T>> {
        for (pattern, target) in &self.routes {
            if let Some(params) = pattern.matches(event) {
                return Some(Route { target, pattern: Some(pattern), params });
            }
        }
        self.fallback.as_ref().map(|target| Route {
            target,
            pattern: None,
            params: Params::default(),
        })
    }

    /// Whether any route or a fallback is set.
    pub(crate) fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.fallback.is_none()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn router(patterns: &[&str]) -> Router<usize> {
        let mut router = Router::default();
        for (i, p) in patterns.iter().enumerate() {
            router
                .add(Pattern::parse(p).unwrap_or_else(|e| panic!("{e}")), i)
                .unwrap_or_else(|p| panic!("dup {p}"));
        }
        router
    }

    fn found(router: &Router<usize>, event: &str) -> Option<(usize, Vec<(String, String)>)> {
        router.find(event).map(|r| (*r.target, r.params.0))
    }

    #[test]
    fn literals_beat_parameters_which_beat_rest_and_the_fallback_takes_the_rest() {
        let mut r = router(&["game/*rest", "game/:type/move", "game/chess/move", "chat:message"]);
        r.fallback(99);
        assert_eq!(found(&r, "game/chess/move"), Some((2, vec![])));
        assert_eq!(found(&r, "game/go/move"), Some((1, vec![("type".into(), "go".into())])));
        assert_eq!(
            found(&r, "game/go/resign"),
            Some((0, vec![("rest".into(), "go/resign".into())]))
        );
        assert_eq!(found(&r, "chat:message"), Some((3, vec![])));
        assert_eq!(found(&r, "chat:typing"), Some((99, vec![])));
        assert_eq!(found(&r, "game"), Some((99, vec![])), "a rest parameter needs a segment");
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        assert!(matches!(Pattern::parse(""), Err(PatternError::EmptySegment(_))));
        assert!(matches!(Pattern::parse("a//b"), Err(PatternError::EmptySegment(_))));
        assert!(matches!(Pattern::parse("/a"), Err(PatternError::EmptySegment(_))));
        assert!(matches!(Pattern::parse("a/:"), Err(PatternError::UnnamedParameter(_))));
        assert!(matches!(Pattern::parse("*x/a"), Err(PatternError::RestNotLast(_))));
        assert!(matches!(Pattern::parse(":x/:x"), Err(PatternError::DuplicateName(_))));
        let mut r = router(&["a/:x"]);
        assert!(r.add(Pattern::parse("a/:y").unwrap_or_else(|e| panic!("{e}")), 1).is_err());
    }

    #[test]
    fn without_a_fallback_an_unmatched_event_has_no_route() {
        let r = router(&["join"]);
        assert!(r.find("leave").is_none());
        assert!(r.find("join/x").is_none());
        assert!(r.find("").is_none());
    }

    /// A segment of an event name: a few letters, so that patterns and names collide often.
    fn segment() -> impl Strategy<Value = String> {
        "[ab]{1,2}"
    }

    fn name() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(segment(), 1..4)
    }

    /// A pattern over the same alphabet: each segment literal, a parameter, or (last) a rest.
    fn pattern() -> impl Strategy<Value = String> {
        (proptest::collection::vec((segment(), 0u8..3), 1..4), any::<bool>()).prop_map(
            |(parts, rest)| {
                let n = parts.len();
                parts
                    .into_iter()
                    .enumerate()
                    .map(|(i, (s, kind))| match kind {
                        1 => format!(":p{i}"),
                        2 if rest && i + 1 == n => format!("*p{i}"),
                        _ => s,
                    })
                    .collect::<Vec<_>>()
                    .join("/")
            },
        )
    }

    proptest! {
        /// What a route binds, put back into its pattern, gives the event name again; and the
        /// route chosen is one that matches, with no matching route more specific.
        #[test]
        fn the_chosen_route_matches_binds_the_name_back_and_none_more_specific_matches(
            patterns in proptest::collection::vec(pattern(), 1..8),
            name in name(),
        ) {
            let mut r: Router<usize> = Router::default();
            for (i, p) in patterns.iter().enumerate() {
                let _ = r.add(Pattern::parse(p).unwrap_or_else(|e| panic!("{e}")), i);
            }
            let event = name.join("/");
            let matching: Vec<&(Pattern, usize)> =
                r.routes.iter().filter(|(p, _)| p.matches(&event).is_some()).collect();
            match r.find(&event) {
                None => prop_assert!(matching.is_empty()),
                Some(route) => {
                    let pattern = route.pattern.unwrap_or_else(|| panic!("no fallback set"));
                    let rebuilt: Vec<String> = pattern
                        .segments
                        .iter()
                        .map(|s| match s {
                            Segment::Literal(l) => l.clone(),
                            Segment::Param(k) | Segment::Rest(k) => {
                                route.params.get(k).unwrap_or_default().to_owned()
                            }
                        })
                        .collect();
                    prop_assert_eq!(rebuilt.join("/"), event.clone());
                    for (other, _) in matching {
                        prop_assert!(pattern.specificity() <= other.specificity());
                    }
                }
            }
        }

        /// A literal route for the exact name always wins, whatever else is registered and in
        /// whatever order; the fallback is used exactly when nothing matches.
        #[test]
        fn an_exact_route_always_wins_and_the_fallback_only_when_nothing_matches(
            mut patterns in proptest::collection::vec(pattern(), 0..8),
            name in name(),
            at in any::<proptest::sample::Index>(),
        ) {
            let event = name.join("/");
            let exact = at.index(patterns.len() + 1);
            patterns.insert(exact, event.clone());
            let mut r: Router<usize> = Router::default();
            r.fallback(usize::MAX);
            for (i, p) in patterns.iter().enumerate() {
                let _ = r.add(Pattern::parse(p).unwrap_or_else(|e| panic!("{e}")), i);
            }
            let route = r.find(&event).unwrap_or_else(|| panic!("the fallback is set"));
            prop_assert_eq!(route.pattern.map(Pattern::as_str), Some(event.as_str()));
            let other = format!("{event}/zz");
            let route = r.find(&other).unwrap_or_else(|| panic!("the fallback is set"));
            let any_matches = r.routes.iter().any(|(p, _)| p.matches(&other).is_some());
            prop_assert_eq!(route.pattern.is_none(), !any_matches);
        }
    }
}
