//! ESO's `fake` provider: static data held in the store itself (`spec.provider.fake.data[]`).

use crds::external_secrets::FakeProvider as FakeSpec;
use zeroize::Zeroizing;

use super::{BoxFut, CallRecorder, FindQuery, GetResult, ProviderError, SecretProvider, ValueRef};
use crate::external::data::SecretMap;

pub struct FakeProvider {
    entries: Vec<(String, Option<String>, Zeroizing<Vec<u8>>)>,
    calls: CallRecorder,
}

impl FakeProvider {
    pub fn new(spec: &FakeSpec, calls: CallRecorder) -> Self {
        FakeProvider {
            entries: spec
                .data
                .iter()
                .map(|d| {
                    (
                        d.key.clone(),
                        d.version.clone().filter(|v| !v.is_empty()),
                        Zeroizing::new(d.value.clone().unwrap_or_default().into_bytes()),
                    )
                })
                .collect(),
            calls,
        }
    }
}

impl SecretProvider for FakeProvider {
    fn kind(&self) -> &'static str {
        "fake"
    }

    fn get<'a>(&'a self, r: &'a ValueRef) -> BoxFut<'a, GetResult> {
        Box::pin(async move {
            let version = r.version.as_deref().filter(|v| !v.is_empty());
            let result = self
                .entries
                .iter()
                .find(|(k, v, _)| *k == r.key && v.as_deref() == version)
                .map(|(_, _, value)| value.clone())
                .ok_or_else(|| ProviderError::NotFound(format!("key {:?}", r.key)));
            self.calls.record("Get", &result);
            result
        })
    }

    fn find<'a>(&'a self, q: &'a FindQuery) -> BoxFut<'a, Result<SecretMap, ProviderError>> {
        Box::pin(async move {
            let re = match q.name_regexp.as_deref().map(regex::Regex::new).transpose() {
                Ok(re) => re,
                Err(e) => return Err(ProviderError::Config(format!("find.name.regexp: {e}"))),
            };
            let mut out = SecretMap::new();
            for (key, version, value) in &self.entries {
                let in_path = q.path.as_deref().is_none_or(|p| key.starts_with(p));
                let matches = re.as_ref().is_none_or(|re| re.is_match(key));
                if version.is_none() && in_path && matches {
                    out.insert(key.clone(), value.clone());
                }
            }
            self.calls.record_status("Find", "success");
            Ok(out)
        })
    }

    fn validate(&self) -> BoxFut<'_, Result<(), ProviderError>> {
        Box::pin(async { Ok(()) })
    }
}
