//! Damaged positions files: what can still be read is kept, the damaged file is set aside for the
//! operator, and the run goes on.
//!
//! Both files are written atomically, so damage comes from outside: a disk that lost its
//! write-back (a file of NUL bytes, loki 6268), a hand edit, a full disk. Promtail refuses to start
//! on such a file unless `ignore_invalid_yaml` is set, and then reads every file from its start;
//! lokiship resumes from the previous copy when it is whole, else from every entry that still
//! parses, and reads only the files it lost track of from their start — duplicates, never loss.

use super::format::{self, Damage, OnDisk};
use std::path::{Path, PathBuf};

/// The two files' texts as read: `None` for one that is not there; bytes that are not UTF-8 are
/// damage like any other.
pub struct Texts {
    pub positions: Option<Vec<u8>>,
    pub identities: Option<Vec<u8>>,
}

impl Texts {
    /// Reads the positions file at `path` and the identity file beside it. Without the positions
    /// file its identities do not count: deleting the positions file is how an operator makes
    /// lokiship read everything again, as with Promtail.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        let read = |p: &Path| match std::fs::read(p) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        };
        let positions = read(path)?;
        let identities = match positions {
            Some(_) => read(&format::identity_path(path))?,
            None => None,
        };
        Ok(Self {
            positions,
            identities,
        })
    }

    pub fn parse(&self) -> Result<OnDisk, Damage> {
        let positions = text(self.positions.as_deref()).map_err(Damage::Positions)?;
        let identities = match self.identities.as_deref() {
            Some(bytes) => Some(text(Some(bytes)).map_err(Damage::Identities)?),
            None => None,
        };
        format::parse(positions, identities)
    }

    /// Everything that still parses: the identity file if it is whole, and each entry of the
    /// positions map that parses on its own. `Err` only for an identity file of a newer lokiship.
    pub fn salvage(&self) -> Result<(OnDisk, usize), Damage> {
        let mut on_disk = OnDisk::default();
        let mut kept = 0;
        let positions = text(self.positions.as_deref()).unwrap_or_default();
        match format::parse_positions(positions) {
            Ok(whole) => {
                kept += whole.positions.len() + whole.cursors.len();
                on_disk.positions = whole.positions;
                on_disk.cursors = whole.cursors;
            }
            Err(_) => {
                for line in String::from_utf8_lossy(self.positions.as_deref().unwrap_or_default())
                    .lines()
                    .filter(|l| l.starts_with(' '))
                {
                    if let Ok(one) = format::parse_positions(&format!("positions:\n{line}\n")) {
                        kept += one.positions.len() + one.cursors.len();
                        on_disk.positions.extend(one.positions);
                        on_disk.cursors.extend(one.cursors);
                    }
                }
            }
        }
        if let Some(Ok(text)) = self.identities.as_deref().map(std::str::from_utf8) {
            match format::parse_identities(text) {
                Ok(ids) => {
                    on_disk.files = ids.files;
                    on_disk.truncated = ids.truncated;
                }
                Err(newer @ Damage::Newer(_)) => return Err(newer),
                Err(_) => {}
            }
        }
        Ok((on_disk, kept))
    }
}

fn text(bytes: Option<&[u8]>) -> Result<&str, String> {
    std::str::from_utf8(bytes.unwrap_or_default())
        .map_err(|e| format!("not UTF-8 ({e}): the file is damaged"))
}

/// Moves the damaged file(s) of `damage` aside as `<name>.damaged`, counted in
/// `lokiship_state_damaged_total`; the next save writes new ones. Returns where they went.
pub fn set_aside(path: &Path, damage: &Damage) -> Vec<PathBuf> {
    let mut moved = Vec::new();
    let mut aside = |from: PathBuf, file: &str| {
        let mut to = from.as_os_str().to_os_string();
        to.push(".damaged");
        let to = PathBuf::from(to);
        if std::fs::rename(&from, &to).is_ok() {
            crate::metrics::state_damaged(file);
            moved.push(to);
        }
    };
    match damage {
        Damage::Positions(_) => aside(path.to_path_buf(), "positions"),
        Damage::Identities(_) => aside(format::identity_path(path), "positions_identities"),
        Damage::Newer(_) => {}
    }
    moved
}
