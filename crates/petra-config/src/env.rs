//! `${NAME}` environment references in string values.
//!
//! Any number of references may appear in one value (`${HOST}:${PORT}`); `$${` writes a literal
//! `${`; a `$` not followed by `{` is kept as it is. Names follow the shell's rule
//! (`[A-Za-z_][A-Za-z0-9_]*`). The environment is passed in as a function so tests never touch
//! the process environment.

/// Why a value could not be expanded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EnvError {
    /// The variables referenced but not set (each once, in order of appearance).
    Unset(Vec<String>),
    /// A malformed reference: what is wrong.
    Malformed(String),
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f == '_' || f.is_ascii_alphabetic())
        && c.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Expands every `${NAME}` in `s`. Returns `Ok(None)` when `s` holds no reference and no
/// escape, so callers can keep the original text.
pub(crate) fn expand(
    s: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, EnvError> {
    if !s.contains("${") {
        return Ok(None);
    }
    let mut out = String::with_capacity(s.len());
    let mut unset: Vec<String> = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else {
                return Err(EnvError::Malformed(
                    "`${` is not closed by `}`; write ${NAME}, or $${ for a literal `${`".into(),
                ));
            };
            let name = &tail[..end];
            if !is_name(name) {
                return Err(EnvError::Malformed(format!(
                    "`${{{name}}}` is not a valid environment variable reference; names are \
                     letters, digits and `_`, not starting with a digit"
                )));
            }
            match env(name) {
                Some(v) => out.push_str(&v),
                None => {
                    if !unset.iter().any(|u| u == name) {
                        unset.push(name.to_string());
                    }
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    if unset.is_empty() {
        Ok(Some(out))
    } else {
        Err(EnvError::Unset(unset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("plc1".into()),
            "PORT" => Some("502".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_every_reference() {
        assert_eq!(expand("plain", &env), Ok(None));
        assert_eq!(expand("${HOST}", &env), Ok(Some("plc1".into())));
        assert_eq!(
            expand("tcp://${HOST}:${PORT}/x", &env),
            Ok(Some("tcp://plc1:502/x".into()))
        );
        assert_eq!(expand("a${EMPTY}b", &env), Ok(Some("ab".into())));
        assert_eq!(expand("${HOST}${HOST}", &env), Ok(Some("plc1plc1".into())));
    }

    #[test]
    fn dollar_dollar_escapes_and_lone_dollars_stay() {
        assert_eq!(expand("$${HOST}", &env), Ok(Some("${HOST}".into())));
        assert_eq!(
            expand("cost $5 ${PORT}", &env),
            Ok(Some("cost $5 502".into()))
        );
        assert_eq!(expand("$$${HOST}", &env), Ok(Some("$${HOST}".into())));
        assert_eq!(expand("$${", &env), Ok(Some("${".into())));
    }

    #[test]
    fn unset_variables_are_all_named_once() {
        assert_eq!(
            expand("${NOPE}-${HOST}-${ALSO_NOPE}-${NOPE}", &env),
            Err(EnvError::Unset(vec!["NOPE".into(), "ALSO_NOPE".into()]))
        );
    }

    #[test]
    fn malformed_references() {
        assert!(
            matches!(expand("${HOST", &env), Err(EnvError::Malformed(m)) if m.contains("not closed"))
        );
        assert!(matches!(expand("${}", &env), Err(EnvError::Malformed(_))));
        assert!(matches!(expand("${1X}", &env), Err(EnvError::Malformed(_))));
        assert!(matches!(
            expand("${A B}", &env),
            Err(EnvError::Malformed(_))
        ));
    }
}
