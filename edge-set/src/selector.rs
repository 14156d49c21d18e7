//! Kubernetes label selectors (`matchLabels` and `matchExpressions`), as
//! `podSelector` and `namespaceSelector` use them.
//!
//! Semantics follow `k8s.io/apimachinery/pkg/labels`: every requirement must
//! hold; `In` needs the key with one of the values; `NotIn` holds when the
//! key is absent or its value is none of the values; `Exists` /
//! `DoesNotExist` test the key only. The empty selector selects everything.
//! A selector is checked when it is read, as the API server checks it:
//! `In`/`NotIn` need values, `Exists`/`DoesNotExist` take none, and any other
//! operator is an error.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Labels as a selector reads them: a lookup by key.
pub trait Labels {
    /// The value of `key`, if the object has that label.
    fn get(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` (`matchLabels`) or `key In (values)`.
    In(String, Vec<String>),
    /// `key NotIn (values)`: also holds when the key is absent.
    NotIn(String, Vec<String>),
    /// The key is present.
    Exists(String),
    /// The key is absent.
    DoesNotExist(String),
}

impl Requirement {
    fn holds(&self, labels: &impl Labels) -> bool {
        match self {
            Self::In(key, values) => labels
                .get(key)
                .is_some_and(|value| values.iter().any(|v| v == value)),
            Self::NotIn(key, values) => labels
                .get(key)
                .is_none_or(|value| values.iter().all(|v| v != value)),
            Self::Exists(key) => labels.get(key).is_some(),
            Self::DoesNotExist(key) => labels.get(key).is_none(),
        }
    }
}

/// A label selector: all of its requirements must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// The empty selector, which selects everything.
    pub fn everything() -> Self {
        Self::default()
    }

    /// A selector of the given requirements.
    pub fn new(requirements: Vec<Requirement>) -> Self {
        Self { requirements }
    }

    /// `key=value` for each pair (as `matchLabels`).
    pub fn match_labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self::new(
            pairs
                .into_iter()
                .map(|(k, v)| Requirement::In(k.to_owned(), vec![v.to_owned()]))
                .collect(),
        )
    }

    /// Whether it selects everything.
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &impl Labels) -> bool {
        self.requirements.iter().all(|r| r.holds(labels))
    }
}

/// A selector as Kubernetes JSON writes it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct RawSelector {
    match_labels: Option<BTreeMap<String, String>>,
    match_expressions: Option<Vec<RawExpression>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawExpression {
    key: Option<String>,
    operator: Option<String>,
    values: Option<Vec<String>>,
}

impl RawSelector {
    /// Checks the selector; `field` names it in the error.
    pub(crate) fn compile(self, field: &str) -> Result<LabelSelector, String> {
        let mut requirements: Vec<Requirement> = self
            .match_labels
            .into_iter()
            .flatten()
            .map(|(key, value)| Requirement::In(key, vec![value]))
            .collect();
        for (index, expression) in self.match_expressions.into_iter().flatten().enumerate() {
            let at = format!("{field}.matchExpressions[{index}]");
            let key = expression
                .key
                .filter(|k| !k.is_empty())
                .ok_or_else(|| format!("{at}.key is missing"))?;
            let values = expression.values.unwrap_or_default();
            let operator = expression.operator.unwrap_or_default();
            let requirement = match operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    return Err(format!("{at}: operator {operator} needs values"));
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(format!("{at}: operator {operator} takes no values"));
                }
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                other => {
                    return Err(format!(
                        "{at}.operator {other:?} is not In, NotIn, Exists or DoesNotExist"
                    ));
                }
            };
            requirements.push(requirement);
        }
        Ok(LabelSelector::new(requirements))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn selector(json: &str) -> Result<LabelSelector, String> {
        serde_json::from_str::<RawSelector>(json)
            .unwrap()
            .compile("podSelector")
    }

    #[test]
    fn requirements_follow_apimachinery() {
        let web = labels(&[("app", "web"), ("tier", "frontend")]);
        let bare = labels(&[]);
        let cases = [
            (r"{}", true, true),
            (r#"{"matchLabels": {"app": "web"}}"#, true, false),
            (
                r#"{"matchExpressions": [{"key": "tier", "operator": "In", "values": ["frontend", "x"]}]}"#,
                true,
                false,
            ),
            (
                r#"{"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["backend"]}]}"#,
                true,
                true,
            ),
            (
                r#"{"matchExpressions": [{"key": "app", "operator": "Exists"}]}"#,
                true,
                false,
            ),
            (
                r#"{"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}"#,
                false,
                true,
            ),
            (
                r#"{"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["frontend"]}]}"#,
                false,
                false,
            ),
        ];
        for (json, on_web, on_bare) in cases {
            let selector = selector(json).unwrap();
            assert_eq!(
                (selector.matches(&web), selector.matches(&bare)),
                (on_web, on_bare),
                "{json}"
            );
        }
    }

    #[test]
    fn malformed_selectors_are_rejected_with_the_field() {
        for (json, problem) in [
            (
                r#"{"matchExpressions": [{"key": "a", "operator": "In"}]}"#,
                "podSelector.matchExpressions[0]: operator In needs values",
            ),
            (
                r#"{"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}"#,
                "podSelector.matchExpressions[0]: operator Exists takes no values",
            ),
            (
                r#"{"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}"#,
                "podSelector.matchExpressions[0].operator \"Gt\" is not In, NotIn, Exists or DoesNotExist",
            ),
            (
                r#"{"matchExpressions": [{"operator": "Exists"}]}"#,
                "podSelector.matchExpressions[0].key is missing",
            ),
        ] {
            assert_eq!(selector(json).unwrap_err(), problem);
        }
    }
}
