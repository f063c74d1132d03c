//! Keyset pagination: a list comes in pages, and each page names the [`Cursor`] that
//! continues it.

use herald_wire::InvalidInput;

/// Where the next page of a list starts: opaque to callers, who get it from one page and
/// hand it back for the next. (It is the last row's id; rows are listed newest first, so a
/// page starts below it and rows added meanwhile never shift a walk.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor(i64);

impl Cursor {
    pub(crate) fn after(id: i64) -> Self {
        Self(id)
    }

    pub(crate) fn id(self) -> i64 {
        self.0
    }

    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        s.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Self)
            .ok_or_else(|| {
                InvalidInput(format!(
                    "cursor {s:?} is not one this list gave out; pass the `next` of the page before"
                ))
            })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A page size: 1 to [`Limit::MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(i64);

impl Limit {
    pub const MAX: i64 = 100;
    pub const DEFAULT: Self = Self(20);
    /// The largest page, [`Limit::MAX`] items.
    pub const LARGEST: Self = Self(Self::MAX);

    pub fn new(n: i64) -> Result<Self, InvalidInput> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(InvalidInput(format!(
                "limit must be between 1 and {}, got {n}",
                Self::MAX
            )))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Rows and where the next page starts (`None`: this is the last).
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// `rows` fetched with one more than `limit`: the extra row only says that a next page
    /// exists.
    pub(crate) fn of(mut rows: Vec<T>, limit: Limit, id: impl Fn(&T) -> i64) -> Self {
        let more = rows.len() as i64 > limit.get();
        rows.truncate(limit.get() as usize);
        let next = if more {
            rows.last().map(|r| Cursor::after(id(r)))
        } else {
            None
        };
        Self { items: rows, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_and_limits_refuse_what_they_did_not_give_out() {
        assert_eq!(Cursor::parse("42").unwrap().id(), 42);
        for bad in ["", "0", "-3", "abc", "1.5", "99999999999999999999"] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Limit::new(0).is_err());
        assert!(Limit::new(101).is_err());
        assert_eq!(Limit::new(100).unwrap().get(), 100);
    }

    #[test]
    fn a_page_says_whether_another_follows() {
        let limit = Limit::new(2).unwrap();
        let p = Page::of(vec![9, 7, 5], limit, |r| *r);
        assert_eq!(p.items, vec![9, 7]);
        assert_eq!(p.next, Some(Cursor(7)));
        let p = Page::of(vec![9, 7], limit, |r| *r);
        assert_eq!(p.next, None);
    }
}
