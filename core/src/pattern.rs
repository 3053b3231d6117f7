//! Room-name patterns, and the one rule that matches them: `*` matches any run of characters.
//! Room policies use them compiled ([`RoomPattern`]); a token's list of rooms matches them as
//! written ([`glob`]).

/// A room-name pattern: `*` matches any run of characters (none included), everything else
/// matches itself. `chat:*` matches `chat:lobby`; `team:*:chat` matches `team:42:chat`; `lobby`
/// matches only `lobby`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomPattern {
    text: Box<str>,
    /// The text between the `*`s (one part without any): the first must start the name, the
    /// last end it, the others come in order between.
    parts: Box<[Box<str>]>,
    /// Bytes that are not `*`: the more, the more specific; a name shorter matches nothing.
    literal: usize,
    stars: usize,
}

impl RoomPattern {
    /// The pattern `text`.
    pub fn new(text: &str) -> Self {
        let stars = text.bytes().filter(|b| *b == b'*').count();
        let parts = text.split('*').map(Box::from).collect();
        Self { text: text.into(), parts, literal: text.len() - stars, stars }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `room` matches. Most patterns are refused by their first or last bytes, without
    /// a search.
    pub fn matches(&self, room: &str) -> bool {
        let [first, middle @ .., last] = &*self.parts else {
            return *self.text == *room; // no `*`
        };
        room.len() >= self.literal
            && match_parts(room, first, middle.iter().map(|p| &**p), Some(last))
    }

    /// Orders patterns from the most specific: more literal bytes first, then fewer `*`.
    pub(crate) fn specificity(&self) -> (std::cmp::Reverse<usize>, usize) {
        (std::cmp::Reverse(self.literal), self.stars)
    }
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters: the rule of
/// [`RoomPattern`], for patterns matched once (a token's list of rooms), without compiling them.
pub(crate) fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let last = parts.next_back();
    match_parts(name, first, parts, last)
}

/// The one matching rule of room patterns, on a pattern cut at its `*`s: `first` starts the
/// name; `last`, if there was a `*`, ends it (else the name is `first` exactly); the `middle`
/// parts come in order between them, none overlapping another.
fn match_parts<'p>(
    name: &str,
    first: &str,
    middle: impl Iterator<Item = &'p str>,
    last: Option<&str>,
) -> bool {
    let Some(last) = last else { return name == first };
    if name.len() < first.len() + last.len() || !name.starts_with(first) || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_matches_any_run_of_characters_anywhere_in_the_name() {
        for (pattern, name) in [
            ("chat:*", "chat:lobby"),
            ("chat:*", "chat:"),
            ("team:*:chat", "team:42:chat"),
            ("*", "anything"),
            ("*:log", "a:b:log"),
            ("a*b*c", "abc"),
            ("a*b*c", "a-b-b-c"),
            ("lobby", "lobby"),
        ] {
            assert!(glob(pattern, name), "{pattern} should match {name}");
        }
        for (pattern, name) in [
            ("chat:*", "chat"),
            ("chat:*", "news:chat:x"),
            ("team:*:chat", "team:42:chat:x"),
            ("lobby", "lobby2"),
            ("*:log", "a:b:logs"),
            ("a*b*c", "acb"),
        ] {
            assert!(!glob(pattern, name), "{pattern} should not match {name}");
        }
    }

    #[test]
    fn a_compiled_pattern_matches_exactly_what_the_glob_does() {
        let patterns = ["chat:*", "team:*:chat", "*", "*:log", "a*b*c", "lobby", "a**b", "*a*", ""];
        let names = [
            "chat:lobby",
            "chat:",
            "chat",
            "team:42:chat",
            "a:b:log",
            "abc",
            "a-b-b-c",
            "acb",
            "lobby",
            "lobby2",
            "ab",
            "a",
            "",
            "ba",
            "team:chat",
        ];
        for pattern in patterns {
            let compiled = RoomPattern::new(pattern);
            for name in names {
                assert_eq!(compiled.matches(name), glob(pattern, name), "{pattern:?} on {name:?}");
            }
        }
    }
}
