//! Azure-Sentinel-format hunting queries (YAML with `relevantTechniques` and `query`): a site's
//! own hunts added beside the library.
