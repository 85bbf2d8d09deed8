//! `StreamParser` fed the same bytes in random chunks gives exactly `Gguf::parse`'s result
//! (a differential check), whatever the chunking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wisp::gguf::{Gguf, StreamParser};

fuzz_target!(|data: &[u8]| {
    // The first byte seeds the chunk sizes; the rest is the file.
    let Some((&seed, file)) = data.split_first() else {
        return;
    };
    let whole = Gguf::parse(file);
    let mut p = StreamParser::new().with_file_len(file.len() as u64);
    let mut state = u32::from(seed) | 1;
    let mut at = 0;
    let mut streamed = None;
    while at < file.len() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = 1 + (state as usize % 64).min(file.len() - at - 1);
        match p.feed(&file[at..at + n]) {
            Ok(Some(g)) => {
                streamed = Some(Ok(g));
                break;
            }
            Ok(None) => {}
            Err(e) => {
                streamed = Some(Err(e));
                break;
            }
        }
        at += n;
    }
    let streamed = match streamed {
        Some(r) => r,
        None => match p.finish() {
            Ok(()) => return, // complete without a header can't happen; nothing to compare
            Err(e) => Err(e),
        },
    };
    match (&whole, &streamed) {
        // Compared as text: a NaN metadata value is not equal to itself, but prints the same.
        (Ok(a), Ok(b)) => assert_eq!(
            format!("{a:?}"),
            format!("{b:?}"),
            "stream and whole parse differ"
        ),
        (Err(_), Err(_)) => {}
        _ => panic!("parse {:?} but stream {:?}", whole.is_ok(), streamed.is_ok()),
    }
});
