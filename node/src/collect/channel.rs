//! Channel grouping for web events, which carry no `channel`: a pure function of
//! `utm_source`, `utm_medium` and the referrer, modelled on GA4's default channel
//! grouping and mapped onto events.md's channels. The rules, first match wins,
//! are documented in docs/collector.md. A tenant may put its own ordered
//! rules (`[[tenants.<t>.channel_rules]]`) before them.

use serde::{Deserialize, Serialize};
use touchline_actors::domain::Channel;

/// The inputs of the grouping (already percent-decoded; empty = absent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signals<'a> {
    pub source: Option<&'a str>,
    pub medium: Option<&'a str>,
    /// The referrer URL (a self-referral is removed by the caller).
    pub referrer: Option<&'a str>,
}

const SEARCH: &[&str] = &["google", "bing", "yahoo", "baidu", "duckduckgo", "yandex", "ecosia", "ask", "naver", "search"];
const SOCIAL: &[&str] = &["facebook", "fb", "instagram", "ig", "linkedin", "lnkd", "twitter", "x", "t", "tiktok", "pinterest", "reddit", "snapchat", "threads", "mastodon"];
const VIDEO: &[&str] = &["youtube", "youtu", "vimeo", "twitch", "dailymotion", "wistia"];
const SOCIAL_MEDIUMS: &[&str] = &["social", "social-network", "social-media", "sm", "social network", "social media", "organic-social", "organic social"];
const DISPLAY_MEDIUMS: &[&str] = &["display", "banner", "expandable", "interstitial", "cpm"];
const EMAIL: &[&str] = &["email", "e-mail", "e_mail", "e mail", "newsletter"];
const REFERRAL_MEDIUMS: &[&str] = &["referral", "app", "link"];

/// The events.md channel of a touchpoint with these signals.
pub fn channel(s: &Signals<'_>) -> &'static str {
    let norm = |v: Option<&str>| v.map(|v| v.trim().to_ascii_lowercase()).filter(|v| !v.is_empty());
    let source = norm(s.source).filter(|v| v != "(direct)");
    let medium = norm(s.medium).filter(|v| v != "(none)" && v != "(not set)");
    let referrer = s.referrer.and_then(host);
    // The site that sent the visitor: the utm_source, else the referrer's host.
    let site = source.clone().or_else(|| referrer.clone());
    let is = |list: &[&str]| site.as_deref().is_some_and(|v| names_one_of(v, list));
    let medium_is = |list: &[&str]| medium.as_deref().is_some_and(|m| list.contains(&m));
    let paid = medium.as_deref().is_some_and(|m| m.contains("cp") || m == "ppc" || m == "retargeting" || m.starts_with("paid"));

    if source.is_none() && medium.is_none() && referrer.is_none() {
        return "direct";
    }
    if paid && is(SEARCH) {
        return "search";
    }
    if paid && is(SOCIAL) {
        return "social";
    }
    if paid && is(VIDEO) {
        return "video";
    }
    if medium_is(DISPLAY_MEDIUMS) {
        return "display";
    }
    if paid {
        return "other";
    }
    if is(SOCIAL) || medium_is(SOCIAL_MEDIUMS) {
        return "social";
    }
    if is(VIDEO) || medium.as_deref().is_some_and(|m| m.contains("video")) {
        return "video";
    }
    if is(SEARCH) || medium.as_deref() == Some("organic") {
        return "search";
    }
    if medium_is(EMAIL) || source.as_deref().is_some_and(|v| EMAIL.contains(&v)) {
        return "email";
    }
    if medium.as_deref() == Some("affiliate") {
        return "referral";
    }
    if medium_is(REFERRAL_MEDIUMS) || (medium.is_none() && referrer.is_some()) {
        return "referral";
    }
    "other"
}

/// A rule's channel: one of events.md's (`touchline_actors::domain::Channel`), by name.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String", into = "String")]
pub struct RuleChannel(pub Channel);

impl TryFrom<String> for RuleChannel {
    type Error = String;
    fn try_from(s: String) -> Result<RuleChannel, String> {
        Channel::parse(&s).map(RuleChannel).ok_or_else(|| format!("{s:?} is not one of events.md's channels ({})", Channel::ALL.map(Channel::as_str).join(", ")))
    }
}

impl From<RuleChannel> for String {
    fn from(c: RuleChannel) -> String {
        c.0.as_str().to_string()
    }
}

/// A tenant's own rule: every condition given must match (case-insensitive
/// glob, `*` = any run of characters; `""` = absent); `referrer` matches the
/// referrer's host without `www.`. The first matching rule wins over the defaults.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub medium: Option<String>,
    #[serde(default)]
    pub referrer: Option<String>,
    pub channel: RuleChannel,
}

/// The channel by the tenant's `rules` first, else by the default rules.
pub fn channel_with(rules: &[Rule], s: &Signals<'_>) -> &'static str {
    let norm = |v: Option<&str>| v.map(|v| v.trim().to_ascii_lowercase()).filter(|v| !v.is_empty());
    let (source, medium, referrer) = (norm(s.source), norm(s.medium), s.referrer.and_then(host));
    let cond = |pat: &Option<String>, v: &Option<String>| match (pat.as_deref(), v.as_deref()) {
        (None, _) => true,
        (Some(""), v) => v.is_none(),
        (Some(p), Some(v)) => glob(&p.to_ascii_lowercase(), v),
        (Some(_), None) => false,
    };
    rules
        .iter()
        .find(|r| cond(&r.source, &source) && cond(&r.medium, &medium) && cond(&r.referrer, &referrer))
        .map_or_else(|| channel(s), |r| r.channel.0.as_str())
}

/// `*`-glob match of the whole of `v`.
fn glob(pattern: &str, v: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == v;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !v.starts_with(first) || !v[first.len()..].ends_with(last) || v.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &v[first.len()..v.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// The lower-case host of a URL without `www.` (`None` if it has none).
pub fn host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let h = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let h = h.split(':').next().unwrap_or("").trim().to_ascii_lowercase();
    let h = h.strip_prefix("www.").map(str::to_string).unwrap_or(h);
    (!h.is_empty() && url.contains("://")).then_some(h)
}

/// Whether `v` (a source such as `google` or a host such as `m.facebook.com`)
/// names one of `names`: equal, or one of its dot-separated labels.
fn names_one_of(v: &str, names: &[&str]) -> bool {
    let labels: Vec<&str> = v.split('.').collect();
    names.iter().any(|n| v == *n || (labels.len() > 1 && labels[..labels.len() - 1].contains(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(source: Option<&str>, medium: Option<&str>, referrer: Option<&str>) -> &'static str {
        channel(&Signals { source, medium, referrer })
    }

    #[test]
    fn nothing_at_all_is_direct() {
        assert_eq!(ch(None, None, None), "direct");
        assert_eq!(ch(Some("(direct)"), Some("(none)"), None), "direct");
        assert_eq!(ch(Some(" "), Some(""), None), "direct");
    }

    #[test]
    fn paid_search() {
        assert_eq!(ch(Some("google"), Some("cpc"), None), "search");
        assert_eq!(ch(Some("bing"), Some("ppc"), None), "search");
        assert_eq!(ch(None, Some("paidsearch"), Some("https://www.google.com/")), "search");
    }

    #[test]
    fn paid_social() {
        assert_eq!(ch(Some("facebook"), Some("paid_social"), None), "social");
        assert_eq!(ch(Some("linkedin"), Some("cpc"), None), "social");
    }

    #[test]
    fn paid_video() {
        assert_eq!(ch(Some("youtube"), Some("cpv"), None), "video");
    }

    #[test]
    fn display() {
        for m in ["display", "banner", "cpm", "interstitial", "expandable"] {
            assert_eq!(ch(Some("dv360"), Some(m), None), "display", "{m}");
        }
    }

    #[test]
    fn paid_elsewhere_is_other() {
        assert_eq!(ch(Some("some-network"), Some("cpc"), None), "other");
    }

    #[test]
    fn organic_social() {
        assert_eq!(ch(Some("twitter"), None, None), "social");
        assert_eq!(ch(None, None, Some("https://m.facebook.com/story")), "social");
        assert_eq!(ch(Some("newsletter-partner"), Some("social"), None), "social");
        assert_eq!(ch(None, None, Some("https://t.co/abc")), "social");
    }

    #[test]
    fn organic_video() {
        assert_eq!(ch(None, None, Some("https://www.youtube.com/watch?v=1")), "video");
        assert_eq!(ch(Some("partner"), Some("video"), None), "video");
    }

    #[test]
    fn organic_search() {
        assert_eq!(ch(Some("google"), Some("organic"), None), "search");
        assert_eq!(ch(None, None, Some("https://www.bing.com/search?q=x")), "search");
        assert_eq!(ch(Some("partner"), Some("organic"), None), "search");
    }

    #[test]
    fn email() {
        assert_eq!(ch(Some("mailchimp"), Some("email"), None), "email");
        assert_eq!(ch(Some("newsletter"), None, None), "email");
        assert_eq!(ch(Some("crm"), Some("E-Mail"), None), "email");
    }

    #[test]
    fn affiliate_is_referral() {
        assert_eq!(ch(Some("partner"), Some("affiliate"), None), "referral");
    }

    #[test]
    fn referral() {
        assert_eq!(ch(Some("blog"), Some("referral"), None), "referral");
        assert_eq!(ch(None, None, Some("https://news.example.org/a")), "referral");
    }

    #[test]
    fn anything_else_is_other() {
        assert_eq!(ch(Some("billboard"), Some("offline"), None), "other");
        assert_eq!(ch(Some("billboard"), None, None), "other");
    }

    #[test]
    fn tenant_rules_come_first() {
        let rules: Vec<Rule> = toml::from_str::<std::collections::BTreeMap<String, Vec<Rule>>>(
            "[[r]]\nsource = \"partner-*\"\nmedium = \"cpc\"\nchannel = \"native\"\n[[r]]\nreferrer = \"*.intranet.example\"\nchannel = \"field_sales\"\n[[r]]\nsource = \"\"\nmedium = \"\"\nreferrer = \"\"\nchannel = \"other\"\n",
        )
        .unwrap()
        .remove("r")
        .unwrap();
        let ch = |source, medium, referrer| channel_with(&rules, &Signals { source, medium, referrer });
        assert_eq!(ch(Some("Partner-A"), Some("CPC"), None), "native");
        assert_eq!(ch(Some("partner-a"), Some("email"), None), "email", "a condition that fails falls through to the defaults");
        assert_eq!(ch(None, None, Some("https://crm.intranet.example/x")), "field_sales");
        assert_eq!(ch(None, None, None), "other", "\"\" matches absent");
        assert_eq!(ch(Some("google"), Some("cpc"), None), "search");
        assert!(toml::from_str::<Rule>("channel = \"tv\"").is_err(), "channels are events.md's");
    }

    #[test]
    fn globs() {
        assert!(glob("a*c", "abc") && glob("*", "") && glob("a*", "a") && glob("*b*", "abc") && glob("abc", "abc"));
        assert!(!glob("a*c", "ab") && !glob("ab*ba", "aba") && !glob("abc", "abd"));
    }

    #[test]
    fn hosts() {
        assert_eq!(host("https://www.Google.com:443/x?y").as_deref(), Some("google.com"));
        assert_eq!(host("http://u@l.facebook.com").as_deref(), Some("l.facebook.com"));
        assert_eq!(host("not a url"), None);
    }
}
