//! Publishing Events, for both controllers: the note cut to what the API server accepts.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};

/// The most bytes an Event note may have: the API server counts them with Go's `len`
/// (pkg/apis/core/validation/events.go, `NoteLengthLimit`) and refuses the whole Event beyond,
/// and kube-runtime's `Recorder` sends the note as it is given.
const NOTE_LIMIT_BYTES: usize = 1024;

/// `note`, or when over [`NOTE_LIMIT_BYTES`] its longest prefix ending on a character
/// boundary that fits with a trailing `…`.
pub fn note(note: &str) -> String {
    if note.len() <= NOTE_LIMIT_BYTES {
        return note.to_string();
    }
    let mut end = NOTE_LIMIT_BYTES - '…'.len_utf8();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &note[..end])
}

/// Publishes one Event about `reference` (`action`: what the controller was doing). Events
/// are best effort: the caller logs a failure and carries on.
pub async fn publish(
    recorder: &Recorder,
    reference: &ObjectReference,
    type_: EventType,
    reason: &str,
    text: &str,
    action: &str,
) -> Result<(), kube::Error> {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note(text)),
        action: action.into(),
        secondary: None,
    };
    recorder.publish(&event, reference).await
}

#[cfg(test)]
mod tests {
    use super::{NOTE_LIMIT_BYTES, note as event_note};

    #[test]
    fn event_notes_are_cut_in_bytes_on_a_character_boundary() {
        assert_eq!(event_note("synced 3 entries"), "synced 3 entries");
        let exact = "é".repeat(NOTE_LIMIT_BYTES / 2);
        assert_eq!(event_note(&exact), exact);
        // 600 three-byte characters: 1800 bytes, under 1000 characters (the old cut kept them all).
        for text in [
            "€".repeat(600),
            "é".repeat(700),
            format!("a{}", "😀".repeat(400)),
        ] {
            let cut = event_note(&text);
            assert!(cut.len() <= NOTE_LIMIT_BYTES, "{} bytes", cut.len());
            assert!(
                cut.len() > NOTE_LIMIT_BYTES - 7,
                "cut too short: {}",
                cut.len()
            );
            assert!(cut.ends_with('…'));
            assert!(text.starts_with(cut.trim_end_matches('…')));
        }
    }
}
