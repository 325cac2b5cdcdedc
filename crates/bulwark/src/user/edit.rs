//! Edits of the credential file as a TOML document: comments, order and
//! every entry the command does not touch are kept as they were. Values are
//! validated by the caller before they get here; the result is validated
//! again as a whole with `Store::parse`.

use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, Value};

use bulwark_security::FactorSet;

pub const HEADER: &str = "\
# Bulwark credential store: identities and roles, managed with `bulwark user`.
# It holds password hashes and TOTP secrets: keep it mode 0600.

";

/// What `bulwark user add` writes for a new identity.
pub struct NewIdentity<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub roles: &'a [String],
    pub password_phc: Option<&'a str>,
    pub scram: Option<&'a str>,
    pub totp_secret: Option<&'a str>,
    pub factors: FactorSet,
    pub client_id_pattern: Option<&'a str>,
    pub expires: Option<&'a str>,
}

pub struct StoreDoc {
    doc: DocumentMut,
}

impl StoreDoc {
    pub fn parse(label: &str, text: &str) -> Result<StoreDoc, String> {
        let doc = text
            .parse::<DocumentMut>()
            .map_err(|e| format!("{label} is not valid TOML: {}", e.message().trim()))?;
        match doc.get("identity") {
            None | Some(Item::ArrayOfTables(_)) => Ok(StoreDoc { doc }),
            Some(_) => Err(format!(
                "{label}: 'identity' must be [[identity]] tables; fix the file by hand"
            )),
        }
    }

    pub fn new() -> StoreDoc {
        let mut doc = DocumentMut::new();
        doc.decor_mut().set_prefix(HEADER);
        StoreDoc { doc }
    }

    fn identities(&self) -> Option<&ArrayOfTables> {
        self.doc.get("identity").and_then(Item::as_array_of_tables)
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.identities()?
            .iter()
            .position(|t| t.get("name").and_then(Item::as_str) == Some(name))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    fn entry(&mut self, name: &str) -> Result<&mut Table, String> {
        let i = self.position(name).ok_or_else(|| no_such(name))?;
        self.doc
            .get_mut("identity")
            .and_then(Item::as_array_of_tables_mut)
            .and_then(|a| a.get_mut(i))
            .ok_or_else(|| no_such(name))
    }

    pub fn add(&mut self, new: &NewIdentity) -> Result<(), String> {
        if self.contains(new.name) {
            return Err(format!(
                "identity '{}' already exists; change it with `bulwark user passwd|enable|disable|totp`, or remove it first",
                new.name
            ));
        }
        let mut t = Table::new();
        t.insert("name", Item::Value(new.name.into()));
        t.insert("kind", Item::Value(new.kind.into()));
        if !new.roles.is_empty() {
            t.insert("roles", Item::Value(Value::Array(strings(new.roles))));
        }
        for (key, value) in [
            ("password", new.password_phc),
            ("scram", new.scram),
            ("totp_secret", new.totp_secret),
        ] {
            if let Some(v) = value {
                t.insert(key, Item::Value(v.into()));
            }
        }
        let factors: Vec<String> = new.factors.iter().map(|f| f.name().to_owned()).collect();
        t.insert("factors", Item::Value(Value::Array(strings(&factors))));
        if let Some(p) = new.client_id_pattern {
            t.insert("client_id_pattern", Item::Value(p.into()));
        }
        t.insert("enabled", Item::Value(true.into()));
        if let Some(e) = new.expires {
            t.insert("expires", Item::Value(e.into()));
        }
        let item = self
            .doc
            .entry("identity")
            .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
        let array = item
            .as_array_of_tables_mut()
            .ok_or("'identity' must be [[identity]] tables")?;
        array.push(t);
        Ok(())
    }

    pub fn set_string(&mut self, name: &str, key: &str, value: &str) -> Result<(), String> {
        set(self.entry(name)?, key, value.into());
        Ok(())
    }

    pub fn set_bool(&mut self, name: &str, key: &str, value: bool) -> Result<(), String> {
        set(self.entry(name)?, key, value.into());
        Ok(())
    }

    /// Adds `factor` to an explicit `factors` list; an absent list already
    /// includes every credential the identity has.
    pub fn add_factor(&mut self, name: &str, factor: &str) -> Result<(), String> {
        let t = self.entry(name)?;
        if let Some(list) = t.get_mut("factors").and_then(Item::as_array_mut) {
            if !list.iter().any(|v| v.as_str() == Some(factor)) {
                list.push(factor);
            }
        }
        Ok(())
    }

    pub fn remove(&mut self, name: &str) -> Result<(), String> {
        let i = self.position(name).ok_or_else(|| no_such(name))?;
        let array = self
            .doc
            .get_mut("identity")
            .and_then(Item::as_array_of_tables_mut)
            .ok_or_else(|| no_such(name))?;
        array.remove(i);
        if array.is_empty() {
            self.doc.remove("identity");
        }
        Ok(())
    }

    /// The factors the `[[role]]` entries of `roles` require, read from the
    /// document (which may not validate as a whole yet).
    pub fn role_factors(&self, roles: &[String]) -> FactorSet {
        let Some(tables) = self.doc.get("role").and_then(Item::as_array_of_tables) else {
            return FactorSet::EMPTY;
        };
        tables
            .iter()
            .filter(|t| {
                t.get("name")
                    .and_then(Item::as_str)
                    .is_some_and(|n| roles.iter().any(|r| r == n))
            })
            .filter_map(|t| t.get("factors").and_then(Item::as_array))
            .flat_map(|a| a.iter().filter_map(Value::as_str))
            .filter_map(|n| FactorSet::parse([n]).ok())
            .fold(FactorSet::EMPTY, |acc, f| acc | f)
    }

    pub fn to_text(&self) -> String {
        self.doc.to_string()
    }
}

fn no_such(name: &str) -> String {
    format!("no identity named '{name}' (see `bulwark user list`)")
}

fn strings(items: &[String]) -> Array {
    items.iter().map(String::as_str).collect()
}

/// Sets `key`, keeping the position and comments of an existing value.
fn set(t: &mut Table, key: &str, value: Value) {
    match t.get_mut(key).and_then(Item::as_value_mut) {
        Some(old) => {
            let decor = old.decor().clone();
            *old = value;
            *old.decor_mut() = decor;
        }
        None => {
            t.insert(key, Item::Value(value));
        }
    }
}
