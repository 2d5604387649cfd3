//! Query-string access that keeps repeated keys (`command=a&command=b`).

#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        Self {
            pairs: raw
                .map(|q| {
                    form_urlencoded::parse(q.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Go's strconv.ParseBool truthy forms, which the real server accepts.
    pub fn flag(&self, key: &str) -> bool {
        matches!(
            self.get(key),
            Some("true" | "1" | "t" | "T" | "TRUE" | "True")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_encoded() {
        let q = Query::parse(Some(
            "command=sh&command=-c&command=echo+a%26b&stdin=true&tty=0",
        ));
        assert_eq!(q.all("command"), vec!["sh", "-c", "echo a&b"]);
        assert!(q.flag("stdin"));
        assert!(!q.flag("tty"));
        assert!(!q.flag("missing"));
        assert_eq!(q.get("stdin"), Some("true"));
    }
}
