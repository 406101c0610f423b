//! Cursor pagination over collections ordered by id (ids are ULIDs, so id order is creation
//! order). The store answers one primitive, a [`Scan`]; this module turns the caller's
//! `limit/before/after/order` into that scan and the scan's rows into a page.

use crate::error::ServiceError;

/// The `order` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
    /// Newest first, but `before` fetches older and `after` fetches newer records.
    Normal,
}

impl Order {
    /// Parses the query value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "asc" => Some(Self::Asc),
            "desc" => Some(Self::Desc),
            "normal" => Some(Self::Normal),
            _ => None,
        }
    }
}

/// A validated page request.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// 1–100.
    pub limit: u32,
    /// `before=` cursor.
    pub before: Option<String>,
    /// `after=` cursor.
    pub after: Option<String>,
    /// Presentation order.
    pub order: Order,
}

impl PageRequest {
    /// Validates raw query values; `default_order` is `desc` for most lists, `asc` for events.
    pub fn parse(
        limit: Option<&str>,
        before: Option<&str>,
        after: Option<&str>,
        order: Option<&str>,
        default_order: Order,
    ) -> Result<Self, ServiceError> {
        let limit = match limit {
            None => 10,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| {
                    ServiceError::invalid_field("limit", "invalid", "limit must be an integer between 1 and 100")
                })?,
        };
        let order = match order {
            None => default_order,
            Some(raw) => Order::parse(raw).ok_or_else(|| {
                ServiceError::invalid_field("order", "invalid", "order must be one of asc, desc, normal")
            })?,
        };
        if before.is_some() && after.is_some() {
            return Err(ServiceError::invalid_field(
                "before",
                "invalid",
                "before and after cannot be used together",
            ));
        }
        Ok(Self {
            limit,
            before: before.map(str::to_owned),
            after: after.map(str::to_owned),
            order,
        })
    }

    /// The cursor, if any, for existence checks.
    pub fn cursor(&self) -> Option<(&'static str, &str)> {
        self.before
            .as_deref()
            .map(|c| ("before", c))
            .or(self.after.as_deref().map(|c| ("after", c)))
    }

    fn fetches_newer(&self) -> bool {
        match (self.order, &self.before, &self.after) {
            (Order::Asc, None, _) => true,
            (Order::Asc, Some(_), _) => false,
            (Order::Desc, Some(_), _) => true,
            (Order::Desc, None, _) => false,
            (Order::Normal, _, Some(_)) => true,
            (Order::Normal, _, None) => false,
        }
    }

    /// What the store must read: `limit + 1` rows from the cursor in one direction.
    pub fn scan(&self) -> Scan {
        Scan {
            cursor: self.before.clone().or_else(|| self.after.clone()),
            newer: self.fetches_newer(),
            limit: self.limit + 1,
        }
    }

    /// Builds the page from the rows a [`Scan`] returned (in scan order).
    pub fn page<T>(&self, mut rows: Vec<T>, id: impl Fn(&T) -> String) -> Page<T> {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let newer = self.fetches_newer();
        let presented_newest_first = self.order != Order::Asc;
        // Present rows in the requested order: scans run from the cursor outwards.
        if newer == presented_newest_first {
            rows.reverse();
        }
        let had_cursor = self.before.is_some() || self.after.is_some();
        let first = rows.first().map(&id);
        let last = rows.last().map(&id);
        // `toward_start`: rows exist on the side of the first row; `toward_end`: of the last row.
        let (toward_start, toward_end) = if newer == presented_newest_first {
            (more, had_cursor)
        } else {
            (had_cursor, more)
        };
        let (before, after) = match self.order {
            // asc/desc: `before` walks toward the start, `after` toward the end of the list.
            Order::Asc | Order::Desc => (first.filter(|_| toward_start), last.filter(|_| toward_end)),
            // normal: `after` fetches newer (the first row's side), `before` older.
            Order::Normal => (last.filter(|_| toward_end), first.filter(|_| toward_start)),
        };
        Page {
            data: rows,
            before,
            after,
        }
    }
}

/// What the store reads: rows with id strictly beyond `cursor`, toward newer (ascending) or
/// older (descending) ids, at most `limit` rows, in that scan order.
#[derive(Debug, Clone)]
pub struct Scan {
    /// Exclusive bound.
    pub cursor: Option<String>,
    /// `true`: ascending ids greater than the cursor; `false`: descending ids less than it.
    pub newer: bool,
    /// Row cap.
    pub limit: u32,
}

/// One page and its cursors.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The rows, in the requested order.
    pub data: Vec<T>,
    /// `list_metadata.before`.
    pub before: Option<String>,
    /// `list_metadata.after`.
    pub after: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A collection of ids 1..=n (higher = newer), scanned like the store does.
    fn run(n: u32, req: &PageRequest) -> Page<u32> {
        let scan = req.scan();
        let cursor: Option<u32> = scan.cursor.as_deref().map(|c| c.parse().unwrap());
        let mut rows: Vec<u32> = (1..=n)
            .filter(|i| match cursor {
                None => true,
                Some(c) if scan.newer => *i > c,
                Some(c) => *i < c,
            })
            .collect();
        if !scan.newer {
            rows.reverse();
        }
        rows.truncate(scan.limit as usize);
        req.page(rows, |i| i.to_string())
    }

    fn req(limit: u32, before: Option<&str>, after: Option<&str>, order: &str) -> PageRequest {
        PageRequest::parse(Some(&limit.to_string()), before, after, Some(order), Order::Desc).unwrap()
    }

    #[test]
    fn desc_walks_newest_first_and_back() {
        let p = run(5, &req(2, None, None, "desc"));
        assert_eq!(p.data, vec![5, 4]);
        assert_eq!((p.before.as_deref(), p.after.as_deref()), (None, Some("4")));
        let p = run(5, &req(2, None, Some("4"), "desc"));
        assert_eq!(p.data, vec![3, 2]);
        assert_eq!((p.before.as_deref(), p.after.as_deref()), (Some("3"), Some("2")));
        let p = run(5, &req(2, None, Some("2"), "desc"));
        assert_eq!(p.data, vec![1]);
        assert_eq!((p.before.as_deref(), p.after.as_deref()), (Some("1"), None));
        let p = run(5, &req(2, Some("3"), None, "desc"));
        assert_eq!(p.data, vec![5, 4]);
        assert_eq!((p.before.as_deref(), p.after.as_deref()), (None, Some("4")));
        let p = run(5, &req(2, Some("2"), None, "desc"));
        assert_eq!(p.data, vec![4, 3]);
        assert_eq!((p.before.as_deref(), p.after.as_deref()), (Some("4"), Some("3")));
    }

    #[test]
    fn asc_walks_oldest_first_and_back() {
        let p = run(5, &req(2, None, None, "asc"));
        assert_eq!(p.data, vec![1, 2]);
        assert_eq!((p.before.as_deref(), p.after.as_deref()), (None, Some("2")));
        let p = run(5, &req(2, None, Some("4"), "asc"));
        assert_eq!(p.data, vec![5]);
        assert_eq!((p.before.as_deref(), p.after.as_deref()), (Some("5"), None));
        let p = run(5, &req(2, Some("4"), None, "asc"));
        assert_eq!(p.data, vec![2, 3]);
        assert_eq!((p.before.as_deref(), p.after.as_deref()), (Some("2"), Some("3")));
    }

    #[test]
    fn normal_presents_newest_first_with_reversed_cursors() {
        let p = run(5, &req(2, None, None, "normal"));
        assert_eq!(p.data, vec![5, 4]);
        assert_eq!((p.before.as_deref(), p.after.as_deref()), (Some("4"), None));
        let p = run(5, &req(2, Some("4"), None, "normal"));
        assert_eq!(p.data, vec![3, 2]);
        assert_eq!((p.before.as_deref(), p.after.as_deref()), (Some("2"), Some("3")));
        let p = run(5, &req(2, None, Some("2"), "normal"));
        assert_eq!(p.data, vec![4, 3]);
        assert_eq!((p.before.as_deref(), p.after.as_deref()), (Some("3"), Some("4")));
    }

    #[test]
    fn walking_after_visits_every_row_once() {
        for order in ["asc", "desc"] {
            let mut seen = vec![];
            let mut after: Option<String> = None;
            loop {
                let p = run(23, &req(5, None, after.as_deref(), order));
                seen.extend(p.data);
                match p.after {
                    Some(a) => after = Some(a),
                    None => break,
                }
            }
            seen.sort();
            assert_eq!(seen, (1..=23).collect::<Vec<_>>(), "{order}");
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        for (limit, before, after, order) in [
            (Some("0"), None, None, None),
            (Some("101"), None, None, None),
            (Some("ten"), None, None, None),
            (None, Some("a"), Some("b"), None),
            (None, None, None, Some("sideways")),
        ] {
            assert!(PageRequest::parse(limit, before, after, order, Order::Desc).is_err());
        }
    }
}
