//! Finds the files a target's `__path__` glob matches (with `**`, `{a,b}`, and `__path_exclude__`).
//!
//! The walk starts at the glob's literal prefix directory and descends only as deep as the pattern
//! can match, so `/var/log/*.log` never walks below `/var/log`.

use globset::{GlobBuilder, GlobMatcher};
use std::path::{Path, PathBuf};

pub struct PathGlob {
    pattern: String,
    base: PathBuf,
    /// Directory levels below `base` the pattern can reach; `None` with `**`.
    max_depth: Option<usize>,
    include: GlobMatcher,
    exclude: Option<GlobMatcher>,
}

impl PathGlob {
    pub fn new(pattern: &str, exclude: Option<&str>) -> Result<Self, globset::Error> {
        // `*` stops at `/`, as in Promtail's doublestar globs; `**` crosses directories.
        let compile = |p: &str| {
            GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map(|g| g.compile_matcher())
        };
        let include = compile(pattern)?;
        let exclude = exclude.filter(|e| !e.is_empty()).map(compile).transpose()?;
        let components: Vec<&str> = pattern.split('/').collect();
        let literal = components
            .iter()
            .position(|c| c.contains(['*', '?', '[', '{']))
            .unwrap_or(components.len());
        let base: PathBuf = if literal == 0 {
            PathBuf::from(".")
        } else {
            let joined = components[..literal].join("/");
            PathBuf::from(if joined.is_empty() {
                "/".to_string()
            } else {
                joined
            })
        };
        let rest = &components[literal.min(components.len())..];
        let max_depth = if rest.iter().any(|c| c.contains("**")) {
            None
        } else {
            Some(rest.len())
        };
        Ok(Self {
            pattern: pattern.to_string(),
            base,
            max_depth,
            include,
            exclude,
        })
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The directory watched for changes.
    pub fn base(&self) -> &Path {
        &self.base
    }

    pub fn recursive(&self) -> bool {
        self.max_depth.is_none() || self.max_depth > Some(1)
    }

    /// Does `path` match (and is not excluded)?
    pub fn is_match(&self, path: &Path) -> bool {
        self.include.is_match(path) && !self.exclude.as_ref().is_some_and(|e| e.is_match(path))
    }

    /// Paths that match now (anything but directories), sorted.
    pub fn matches(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if self.max_depth == Some(0) {
            // No wildcard at all: the pattern is one path.
            if self.base.is_file() {
                out.push(self.base.clone());
            }
            return out;
        }
        self.walk(&self.base, 1, &mut out);
        out.sort();
        out
    }

    fn walk(&self, dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            let is_dir = file_type.is_dir() || (file_type.is_symlink() && path.is_dir());
            if is_dir {
                if self.max_depth.is_none_or(|max| depth < max) {
                    self.walk(&path, depth + 1, out);
                }
                continue;
            }
            // FIFOs, sockets and devices that match are returned too: the file source reports
            // them (once) instead of skipping them silently.
            if self.is_match(&path) {
                out.push(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_globs_with_braces_doublestar_and_exclusions() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        for f in [
            "syslog",
            "auth.log",
            "other.log",
            "x.log.gz",
            "a/one.log",
            "a/b/two.log",
        ] {
            std::fs::write(d.join(f), b"").unwrap();
        }
        std::fs::create_dir(d.join("dir.log")).unwrap();
        let names = |pattern: &str, exclude: Option<&str>| -> Vec<String> {
            PathGlob::new(
                &format!("{}/{pattern}", d.display()),
                exclude.map(|e| format!("{}/{e}", d.display())).as_deref(),
            )
            .unwrap()
            .matches()
            .iter()
            .map(|p| p.strip_prefix(d).unwrap().display().to_string())
            .collect()
        };
        assert_eq!(names("{syslog,auth.log}", None), vec!["auth.log", "syslog"]);
        assert_eq!(
            names("*.log", None),
            vec!["auth.log", "other.log"],
            "a directory named dir.log is not a file"
        );
        assert_eq!(
            names("**/*.log", None),
            vec!["a/b/two.log", "a/one.log", "auth.log", "other.log"]
        );
        assert_eq!(
            names("*", Some("*.gz")),
            vec!["auth.log", "other.log", "syslog"]
        );
        assert_eq!(names("syslog", None), vec!["syslog"]);
    }
}
