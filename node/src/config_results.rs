//! The `[results]` section of the node config: the attribution results topic
//! for warehouses (docs/warehouse.md) — on or off, its name, the models its
//! records carry — validated with messages naming the key.

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};
use touchline_actors::domain::models::Model;
use touchline_actors::results::{publishable, ResultsConfig, DEFAULT_MODELS};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ResultsSection {
    /// Publish every conversion's credits to `topic` (and again when they change).
    pub enabled: bool,
    pub topic: String,
    /// Rule models of each record (no `custom`, `markov`, `shapley`).
    pub models: Vec<String>,
    /// Persons one backfill step visits at most (a backfill runs when the
    /// topic is turned on or `topic`, `models` or the lookback change).
    pub backfill_persons: usize,
}

impl Default for ResultsSection {
    fn default() -> Self {
        ResultsSection { enabled: true, topic: "touchline.attributions".into(), models: DEFAULT_MODELS.iter().map(|m| m.as_str().to_string()).collect(), backfill_persons: 1_000 }
    }
}

impl ResultsSection {
    /// Checks the section; `others` are the node's other topics (all must differ).
    pub fn validate(&self, others: &[&str]) -> Result<(), ConfigError> {
        if self.topic.is_empty() || others.contains(&self.topic.as_str()) {
            return Err(ConfigError::Invalid { key: "results.topic", message: "must be non-empty and differ from `topic`, `dlq_topic`, `cluster.members_topic` and `cluster.changelog_topic`".into() });
        }
        self.models()?;
        if self.backfill_persons == 0 {
            return Err(ConfigError::Invalid { key: "results.backfill_persons", message: "must be at least 1".into() });
        }
        Ok(())
    }

    /// The models, parsed and checked (at least one, no repeats).
    pub fn models(&self) -> Result<Vec<Model>, ConfigError> {
        let bad = |message: String| ConfigError::Invalid { key: "results.models", message };
        if self.models.is_empty() {
            return Err(bad("must name at least one model".into()));
        }
        let mut out: Vec<Model> = Vec::new();
        for name in &self.models {
            let m = Model::parse(name).ok_or_else(|| bad(format!("unknown model {name:?}")))?;
            if !publishable(m) {
                return Err(bad(format!("{name:?} is not a per-conversion rule model (custom needs query weights; markov and shapley credit whole path sets)")));
            }
            if out.contains(&m) {
                return Err(bad(format!("{name:?} is listed twice")));
            }
            out.push(m);
        }
        Ok(out)
    }

    /// The intake's results setting: `None` when off.
    pub fn intake(&self, lookback_days: i64) -> Option<(String, ResultsConfig)> {
        let models = self.models().ok()?;
        self.enabled.then(|| (self.topic.clone(), ResultsConfig { topic: self.topic.clone(), models, lookback_days, backfill_persons: self.backfill_persons, ..ResultsConfig::default() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_are_checked_naming_the_key() {
        let ok = ResultsSection::default();
        assert_eq!(ok.models().unwrap(), DEFAULT_MODELS.to_vec());
        assert!(ok.validate(&["marketing-events"]).is_ok());
        for (models, needle) in [(vec![], "at least one"), (vec!["nope"], "unknown"), (vec!["markov"], "rule model"), (vec!["custom"], "rule model"), (vec!["linear", "linear"], "twice")] {
            let s = ResultsSection { models: models.into_iter().map(String::from).collect(), ..ResultsSection::default() };
            let e = s.validate(&[]).unwrap_err().to_string();
            assert!(e.contains("results.models") && e.contains(needle), "{e}");
        }
        let s = ResultsSection { topic: "marketing-events".into(), ..ResultsSection::default() };
        assert!(s.validate(&["marketing-events"]).unwrap_err().to_string().contains("results.topic"));
        let s = ResultsSection { backfill_persons: 0, ..ResultsSection::default() };
        assert!(s.validate(&[]).unwrap_err().to_string().contains("results.backfill_persons"));
        let off = ResultsSection { enabled: false, ..ResultsSection::default() };
        assert_eq!(off.intake(30), None);
        assert_eq!(ok.intake(14).unwrap().1.lookback_days, 14);
    }
}
