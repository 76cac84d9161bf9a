//! Authorization: whether a caller may see and call a tool, read a resource or get a prompt.
//!
//! **Invariant:** deny wins. A call is refused when any rule that matches it denies it; it is
//! let through when a rule allows it or, with no matching rule, when the default allows. A rule
//! matches when its principal globs (if any) match the caller's principal, every claim it names
//! holds one of its values, and one of its globs for the target's kind matches the target's name.
//! A rule with `principals` or `claims` never matches an anonymous caller.

use serde_json::Value;

use super::config::{Effect, RuleConfig, RulesConfig};
use crate::caller::Caller;

/// What is being called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// A tool, by its exposed name.
    Tool(&'a str),
    /// A resource, by its exposed URI.
    Resource(&'a str),
    /// A prompt, by its exposed name.
    Prompt(&'a str),
}

impl Target<'_> {
    fn describe(&self) -> String {
        match self {
            Self::Tool(name) => format!("tool `{name}`"),
            Self::Resource(uri) => format!("resource `{uri}`"),
            Self::Prompt(name) => format!("prompt `{name}`"),
        }
    }
}

/// The rules of the access file.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    config: RulesConfig,
}

/// Why a call is refused: which rule (or the default) and for whom.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{target} is not allowed for {who}: {why}")]
pub struct Denied {
    target: String,
    who: String,
    why: String,
}

impl Rules {
    /// Rules from the access file.
    pub fn new(config: RulesConfig) -> Self {
        Self { config }
    }

    /// Whether there is anything to check (no rules and an allowing default: every call passes).
    pub fn is_open(&self) -> bool {
        self.config.rules.is_empty() && self.config.default == Effect::Allow
    }

    /// Whether `caller` may call `target`.
    pub fn allows(&self, caller: &Caller, target: Target<'_>) -> bool {
        self.check(caller, target).is_ok()
    }

    /// `Ok` when `caller` may call `target`; otherwise what refused it.
    pub fn check(&self, caller: &Caller, target: Target<'_>) -> Result<(), Denied> {
        if self.is_open() {
            return Ok(());
        }
        let mut allowed_by = None;
        for rule in self.config.rules.iter().filter(|rule| matches(rule, caller, target)) {
            match rule.effect {
                Effect::Deny => return Err(self.denied(caller, target, format!("denied by rule {}", rule.number))),
                Effect::Allow => allowed_by = allowed_by.or(Some(rule.number)),
            }
        }
        match (allowed_by, self.config.default) {
            (Some(_), _) | (None, Effect::Allow) => Ok(()),
            (None, Effect::Deny) => {
                Err(self.denied(caller, target, "no rule allows it and the default is deny".to_owned()))
            }
        }
    }

    fn denied(&self, caller: &Caller, target: Target<'_>, why: String) -> Denied {
        let who = match &caller.principal {
            Some(principal) => format!("`{principal}`"),
            None => "anonymous callers".to_owned(),
        };
        Denied { target: target.describe(), who, why }
    }
}

fn matches(rule: &RuleConfig, caller: &Caller, target: Target<'_>) -> bool {
    let (globs, name) = match target {
        Target::Tool(name) => (&rule.tools, name),
        Target::Resource(uri) => (&rule.resources, uri),
        Target::Prompt(name) => (&rule.prompts, name),
    };
    let Some(globs) = globs else { return false };
    if !globs.iter().any(|glob| glob.is_match(name)) {
        return false;
    }
    if let Some(principals) = &rule.principals {
        let Some(principal) = &caller.principal else { return false };
        if !principals.iter().any(|glob| glob.is_match(principal.as_ref())) {
            return false;
        }
    }
    rule.claims.iter().all(|(claim, accepted)| {
        let value = caller.claims.as_ref().and_then(|claims| claims.get(claim));
        match value {
            Some(Value::String(value)) => accepted.iter().any(|accepted| accepted == value),
            Some(Value::Array(values)) => {
                values.iter().filter_map(Value::as_str).any(|value| accepted.iter().any(|accepted| accepted == value))
            }
            Some(Value::Bool(value)) => accepted.iter().any(|accepted| *accepted == value.to_string()),
            Some(Value::Number(value)) => accepted.iter().any(|accepted| *accepted == value.to_string()),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::access::config::parse;

    fn rules(text: &str) -> Rules {
        Rules::new(parse("access.toml", text).unwrap_or_else(|error| panic!("{error:?}")).rules)
    }

    fn caller(principal: Option<&str>, claims: Value) -> Caller {
        Caller {
            principal: principal.map(Into::into),
            claims: claims.as_object().cloned().map(Arc::new),
            ..Caller::default()
        }
    }

    #[test]
    fn deny_wins_over_allow_in_any_order() {
        let rules = rules(
            r#"
[authorization]
[[authorization.rule]]
effect = "allow"
tools = ["*"]
[[authorization.rule]]
effect = "deny"
principals = ["arn:aws:iam::123456789012:role/analyst-*"]
tools = ["file_write", "github__*"]
"#,
        );
        let analyst = caller(Some("arn:aws:iam::123456789012:role/analyst-eu"), Value::Null);
        let admin = caller(Some("arn:aws:iam::123456789012:role/admin"), Value::Null);
        assert!(rules.allows(&analyst, Target::Tool("file")));
        let denied = rules
            .check(&analyst, Target::Tool("github__search"))
            .err()
            .unwrap_or_else(|| panic!("accepted"))
            .to_string();
        assert_eq!(
            denied,
            "tool `github__search` is not allowed for `arn:aws:iam::123456789012:role/analyst-eu`: denied by rule 2"
        );
        assert!(rules.allows(&admin, Target::Tool("github__search")));
        // A rule about tools says nothing about prompts or resources.
        assert!(rules.allows(&analyst, Target::Prompt("github__search")));
    }

    #[test]
    fn a_deny_default_lets_through_only_what_a_rule_allows() {
        let rules = rules(
            r#"
[authorization]
default = "deny"
[[authorization.rule]]
effect = "allow"
claims = { groups = ["analysts", "admins"] }
tools = ["db"]
resources = ["gateway://data/public/*"]
"#,
        );
        let analyst = caller(Some("alice"), serde_json::json!({"groups": ["staff", "analysts"]}));
        let stranger = caller(Some("bob"), serde_json::json!({"groups": "staff"}));
        let anonymous = caller(None, Value::Null);
        assert!(rules.allows(&analyst, Target::Tool("db")));
        assert!(rules.allows(&analyst, Target::Resource("gateway://data/public/a.csv")));
        assert!(!rules.allows(&analyst, Target::Resource("gateway://data/private/a.csv")));
        assert!(!rules.allows(&analyst, Target::Tool("file")));
        let refused =
            rules.check(&stranger, Target::Tool("db")).err().unwrap_or_else(|| panic!("accepted")).to_string();
        assert!(refused.ends_with("no rule allows it and the default is deny"), "{refused}");
        assert!(!rules.allows(&anonymous, Target::Tool("db")));
    }

    #[test]
    fn no_rules_and_an_allowing_default_let_everything_through() {
        let rules = rules("");
        assert!(rules.is_open());
        assert!(rules.allows(&Caller::default(), Target::Tool("anything")));
    }
}
