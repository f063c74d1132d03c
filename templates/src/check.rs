//! The names a template uses, checked at launch: variables, filters and tests that cannot
//! exist are refused at their field, line and column.

use minijinja::{
    ErrorKind,
    machinery::{Instruction, get_compiled_template},
};

use herald_wire::FieldError;

use crate::{CAMPAIGN_FIELDS, Templates, USER_FIELDS, position};

impl Templates {
    /// Check the names the templates use: every variable is a field of `user` or
    /// `campaign` (a user attribute one that `declared` says exists), every filter and test
    /// is one MiniJinja has. Refused at its field, line and column.
    pub fn check_names(&self, declared: impl Fn(&str) -> bool) -> Result<(), FieldError> {
        let globals: Vec<&str> = self.env.globals().map(|(name, _)| name).collect();
        for &field in &self.templated {
            let template = self.template(field);
            let source = template.source();
            // MiniJinja's analysis scopes a `set` inside `if` to the block, where rendering
            // does not: a name set anywhere is the template's own.
            let mut known = globals.clone();
            known.extend(set_targets(source));
            let mut names: Vec<String> = template.undeclared_variables(true).into_iter().collect();
            names.sort();
            for name in names {
                if let Err(message) = check_variable(&name, &known, &declared) {
                    let offset = find_variable(source, &name);
                    return Err(position(field, source, offset, message));
                }
            }
            let compiled = get_compiled_template(&template);
            let streams =
                || std::iter::once(&compiled.instructions).chain(compiled.blocks.values());
            // The analysis above does not see every read (those in slices, in the filters of
            // filter and `set` blocks): each `user.…` of the compiled form is checked too,
            // unless the template has a `user` of its own.
            let own_user = streams().any(|instructions| {
                let mut i = 0;
                while let Some(instruction) = instructions.get(i) {
                    if matches!(instruction, Instruction::StoreLocal("user")) {
                        return true;
                    }
                    i += 1;
                }
                false
            });
            for instructions in streams() {
                let mut i = 0;
                while let Some(instruction) = instructions.get(i) {
                    let unknown = match instruction {
                        Instruction::Lookup("user") if !own_user => {
                            let mut name = String::from("user");
                            let mut j = i + 1;
                            while let Some(Instruction::GetAttr(part)) = instructions.get(j) {
                                name = format!("{name}.{part}");
                                j += 1;
                            }
                            check_variable(&name, &known, &declared).err()
                        }
                        Instruction::ApplyFilter(name, ..) if !self.has_filter(name) => {
                            Some(format!("no filter is called {name:?}"))
                        }
                        Instruction::PerformTest(name, ..) if !self.has_test(name) => {
                            Some(format!("no test is called {name:?}"))
                        }
                        _ => None,
                    };
                    if let Some(message) = unknown {
                        let offset = instructions.get_span(i).map(|s| s.start_offset as usize);
                        return Err(position(field, source, offset, message));
                    }
                    i += 1;
                }
            }
        }
        Ok(())
    }

    fn has_filter(&self, name: &str) -> bool {
        // A filter's own errors (its arguments) mean it exists.
        match self.env.render_str(&format!("{{{{ none | {name} }}}}"), ()) {
            Ok(_) => true,
            Err(e) => e.kind() != ErrorKind::UnknownFilter,
        }
    }

    fn has_test(&self, name: &str) -> bool {
        match self
            .env
            .render_str(&format!("{{{{ none is {name} }}}}"), ())
        {
            Ok(_) => true,
            Err(e) => e.kind() != ErrorKind::UnknownTest,
        }
    }
}

/// The names `{% set a = … %}` and `{% set a, b = … %}` assign anywhere in `source`.
fn set_targets(source: &str) -> Vec<&str> {
    let mut names = Vec::new();
    for (at, _) in source.match_indices("{%") {
        let rest = source[at + 2..].trim_start_matches(['-', '+']).trim_start();
        let Some(rest) = rest.strip_prefix("set") else {
            continue;
        };
        if !rest.starts_with(char::is_whitespace) {
            continue;
        }
        let targets = rest.split(['=', '%']).next().unwrap_or("");
        names.extend(
            targets
                .split(',')
                .map(|t| t.trim().trim_matches(['(', ')']).trim())
                .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_alphanumeric() || c == '_')),
        );
    }
    names
}

/// Where `name` (a dotted path) first appears in `source`: as written, else its first part.
fn find_variable(source: &str, name: &str) -> Option<usize> {
    let word = |needle: &str| {
        source.match_indices(needle).map(|(i, _)| i).find(|&i| {
            let before = source[..i].chars().next_back();
            let after = source[i + needle.len()..].chars().next();
            let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            !ident(before) && before != Some('.') && !ident(after)
        })
    };
    word(name).or_else(|| word(name.split('.').next().unwrap_or(name)))
}

/// Whether `name`, a variable a template reads (`user.attrs.plan`), can exist.
fn check_variable(
    name: &str,
    globals: &[&str],
    declared: &impl Fn(&str) -> bool,
) -> Result<(), String> {
    let parts: Vec<&str> = name.split('.').collect();
    let list = |names: &[&str]| names.join(", ");
    match parts.as_slice() {
        ["user"] | ["campaign"] | ["unsubscribe_url"] => Ok(()),
        ["user", "attrs", rest @ ..] => match rest {
            [] => Ok(()),
            [attr] if declared(attr) => Ok(()),
            [attr] => Err(format!("no user has an attribute {attr:?}")),
            [attr, ..] => Err(format!("user.attrs.{attr} is one value; it has no fields")),
        },
        ["user", field, rest @ ..] => {
            if !USER_FIELDS.contains(field) {
                Err(format!(
                    "a user has no field {field:?}; templates may read {}, and attributes \
                     as user.attrs.NAME",
                    list(&USER_FIELDS)
                ))
            } else if rest.is_empty() {
                Ok(())
            } else {
                Err(format!("user.{field} is one value; it has no fields"))
            }
        }
        ["campaign", field, rest @ ..] => {
            if !CAMPAIGN_FIELDS.contains(field) {
                Err(format!(
                    "a campaign has no field {field:?}; templates may read {}",
                    list(&CAMPAIGN_FIELDS)
                ))
            } else if rest.is_empty() {
                Ok(())
            } else {
                Err(format!("campaign.{field} is one value; it has no fields"))
            }
        }
        [top, ..] if globals.contains(top) => Ok(()),
        [top, ..] => Err(format!(
            "{top:?} is not a variable here; templates read user, campaign and \
             unsubscribe_url (user.name, user.attrs.plan, campaign.key)"
        )),
        [] => Ok(()),
    }
}
