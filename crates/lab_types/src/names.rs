//! Runs' readable names: `brisk-otter-4821`, made from a run's short id so
//! that two runs of one project (whose short ids differ: each is a folder)
//! never get the same generated name, and a run recorded before names existed
//! gets the same name wherever it is read.

/// The longest name a run may be given, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// The longest name [`generated_name`] makes, in characters: tables keep a
/// column of names this wide, so that they line up the same whatever names
/// the runs were given.
pub const GENERATED_MAX_CHARS: usize = 27;

/// The name generated for the run with short id `short` (8 hex digits):
/// an adjective, a noun and a number, from a bijective mix of the id's 32
/// bits, so that runs started one after the other (whose short ids are
/// close) read differently. `None` when `short` is not 8 hex digits.
#[must_use]
pub fn generated_name(short: &str) -> Option<String> {
    let (adjective, noun, number) = name_parts(short)?;
    Some(format!("{adjective}-{noun}-{number}"))
}

/// The adjective, noun and number of [`generated_name`] of `short`.
fn name_parts(short: &str) -> Option<(&'static str, &'static str, u32)> {
    if short.len() != 8 {
        return None;
    }
    let bits = u32::from_str_radix(short, 16).ok()?;
    let mixed = mix(bits);
    Some((
        ADJECTIVES[(mixed >> 24) as usize],
        NOUNS[((mixed >> 16) & 0xff) as usize],
        mixed & 0xffff,
    ))
}

/// Whether `name` is [`generated_name`] of `short`, found without making
/// the name: a listing asks this of every run it reads.
#[must_use]
pub fn is_generated_name(short: &str, name: &str) -> bool {
    let Some((adjective, noun, number)) = name_parts(short) else {
        return false;
    };
    name.strip_prefix(adjective)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.strip_prefix(noun))
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|digits| {
            // The number as `format!` writes it: no sign, no leading zero.
            digits.bytes().all(|b| b.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0'))
                && digits.parse::<u32>() == Ok(number)
        })
}

/// A bijection of `u32` that spreads neighbouring values far apart (each
/// step is invertible: xor with a shift, multiplication by an odd number).
fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

const ADJECTIVES: [&str; 256] = [
    "able",
    "amber",
    "ancient",
    "aqua",
    "arctic",
    "ardent",
    "azure",
    "balmy",
    "bold",
    "brave",
    "breezy",
    "bright",
    "brisk",
    "bronze",
    "calm",
    "candid",
    "carmine",
    "cheery",
    "chill",
    "civic",
    "clever",
    "cobalt",
    "cold",
    "cool",
    "coral",
    "cosmic",
    "cozy",
    "crimson",
    "crisp",
    "curious",
    "daring",
    "dashing",
    "dawn",
    "deep",
    "deft",
    "dewy",
    "divine",
    "dreamy",
    "dusky",
    "eager",
    "early",
    "earnest",
    "easy",
    "elder",
    "electric",
    "elegant",
    "ember",
    "epic",
    "even",
    "exact",
    "fair",
    "faithful",
    "fancy",
    "fast",
    "fearless",
    "fern",
    "fiery",
    "fine",
    "firm",
    "fleet",
    "fluent",
    "fond",
    "frank",
    "free",
    "fresh",
    "frosty",
    "gentle",
    "giant",
    "gifted",
    "glad",
    "gleaming",
    "glossy",
    "golden",
    "grand",
    "grassy",
    "great",
    "green",
    "happy",
    "hardy",
    "hazel",
    "hearty",
    "hidden",
    "honest",
    "humble",
    "icy",
    "ideal",
    "indigo",
    "inner",
    "ivory",
    "jade",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "lasting",
    "lavish",
    "leafy",
    "lemon",
    "level",
    "light",
    "lilac",
    "limber",
    "lively",
    "lofty",
    "loyal",
    "lucid",
    "lucky",
    "lunar",
    "lush",
    "magic",
    "major",
    "mellow",
    "merry",
    "mighty",
    "mild",
    "minty",
    "misty",
    "modest",
    "mossy",
    "noble",
    "north",
    "nimble",
    "oaken",
    "ocean",
    "olive",
    "open",
    "orange",
    "orchid",
    "patient",
    "peach",
    "pearl",
    "perky",
    "pine",
    "plain",
    "plucky",
    "polar",
    "polished",
    "prime",
    "proud",
    "pure",
    "purple",
    "quick",
    "quiet",
    "radiant",
    "rapid",
    "rare",
    "ready",
    "regal",
    "rich",
    "rising",
    "robust",
    "rosy",
    "royal",
    "ruby",
    "rugged",
    "rustic",
    "sage",
    "salty",
    "sandy",
    "scarlet",
    "serene",
    "sharp",
    "shiny",
    "silent",
    "silken",
    "silver",
    "simple",
    "sleek",
    "smooth",
    "snowy",
    "soft",
    "solar",
    "solid",
    "sonic",
    "spare",
    "sparkling",
    "spicy",
    "spring",
    "stable",
    "stark",
    "steady",
    "steel",
    "stellar",
    "still",
    "stormy",
    "strong",
    "sturdy",
    "subtle",
    "sunny",
    "super",
    "supple",
    "swift",
    "tall",
    "tame",
    "teal",
    "tender",
    "tidal",
    "tidy",
    "tiny",
    "topaz",
    "tranquil",
    "true",
    "trusty",
    "twilight",
    "upbeat",
    "urban",
    "valiant",
    "vast",
    "velvet",
    "vernal",
    "violet",
    "vital",
    "vivid",
    "warm",
    "wavy",
    "wild",
    "windy",
    "winter",
    "wise",
    "witty",
    "woody",
    "young",
    "zany",
    "zealous",
    "zen",
    "zesty",
    "autumn",
    "bouncy",
    "chosen",
    "clear",
    "cubic",
    "dapper",
    "dusty",
    "fabled",
    "floral",
    "foggy",
    "gusty",
    "hasty",
    "hushed",
    "jaunty",
    "kindly",
    "lithe",
    "marble",
    "mystic",
    "natty",
    "nova",
    "onyx",
    "pastel",
    "agile",
    "astral",
    "blithe",
    "bonny",
    "cerise",
    "chipper",
    "dulcet",
    "fervent",
];

const NOUNS: [&str; 256] = [
    "acorn",
    "albatross",
    "alder",
    "anchor",
    "antelope",
    "apple",
    "arrow",
    "aspen",
    "aurora",
    "badger",
    "banyan",
    "basil",
    "bay",
    "beacon",
    "bear",
    "beaver",
    "bee",
    "beetle",
    "birch",
    "bison",
    "bloom",
    "boar",
    "bobcat",
    "breeze",
    "brook",
    "buffalo",
    "butterfly",
    "cactus",
    "camel",
    "canyon",
    "cardinal",
    "caribou",
    "cedar",
    "cheetah",
    "cherry",
    "chipmunk",
    "cicada",
    "cliff",
    "cloud",
    "clover",
    "cobra",
    "comet",
    "condor",
    "coral",
    "cougar",
    "cove",
    "coyote",
    "crane",
    "creek",
    "cricket",
    "crow",
    "cypress",
    "daisy",
    "delta",
    "dingo",
    "dolphin",
    "dove",
    "dragon",
    "dune",
    "eagle",
    "echo",
    "eel",
    "egret",
    "elk",
    "elm",
    "ember",
    "falcon",
    "fern",
    "ferret",
    "finch",
    "fjord",
    "flame",
    "fox",
    "frog",
    "gazelle",
    "gecko",
    "geyser",
    "glacier",
    "gopher",
    "grove",
    "gull",
    "hare",
    "harbor",
    "hawk",
    "hazel",
    "heron",
    "hickory",
    "hill",
    "hornet",
    "horse",
    "hummingbird",
    "ibex",
    "ibis",
    "iris",
    "island",
    "jackal",
    "jaguar",
    "jay",
    "juniper",
    "kestrel",
    "kingfisher",
    "kite",
    "koala",
    "lagoon",
    "lake",
    "lark",
    "laurel",
    "lemur",
    "leopard",
    "lily",
    "lion",
    "lizard",
    "llama",
    "lotus",
    "lynx",
    "magpie",
    "mallard",
    "mango",
    "maple",
    "marmot",
    "marten",
    "meadow",
    "mesa",
    "mink",
    "mole",
    "moose",
    "moth",
    "mountain",
    "mule",
    "nebula",
    "newt",
    "nightingale",
    "oak",
    "ocelot",
    "orca",
    "oriole",
    "osprey",
    "otter",
    "owl",
    "panda",
    "panther",
    "parrot",
    "peak",
    "pelican",
    "penguin",
    "pepper",
    "pika",
    "pine",
    "plover",
    "plum",
    "pond",
    "poppy",
    "puffin",
    "puma",
    "quail",
    "quartz",
    "rabbit",
    "raccoon",
    "raven",
    "reef",
    "reindeer",
    "ridge",
    "river",
    "robin",
    "rose",
    "salmon",
    "sequoia",
    "seal",
    "shark",
    "sparrow",
    "spruce",
    "squid",
    "squirrel",
    "star",
    "stork",
    "stream",
    "summit",
    "swallow",
    "swan",
    "tapir",
    "tern",
    "thistle",
    "thrush",
    "tide",
    "tiger",
    "toad",
    "tortoise",
    "trout",
    "tulip",
    "tundra",
    "turtle",
    "valley",
    "viper",
    "vole",
    "walnut",
    "walrus",
    "warbler",
    "wasp",
    "weasel",
    "whale",
    "willow",
    "wolf",
    "wombat",
    "wren",
    "yak",
    "zebra",
    "badlands",
    "basin",
    "bluff",
    "bramble",
    "canopy",
    "cedarwood",
    "cinder",
    "coast",
    "crest",
    "dawn",
    "dell",
    "fable",
    "feather",
    "fir",
    "forest",
    "garnet",
    "gale",
    "harp",
    "hollow",
    "horizon",
    "inlet",
    "ivy",
    "jasper",
    "kelp",
    "lantern",
    "ledge",
    "marsh",
    "meteor",
    "moss",
    "nectar",
    "oasis",
    "orchard",
    "pebble",
    "prairie",
    "quarry",
    "rapids",
    "sapphire",
    "sierra",
    "spire",
    "thicket",
    "timber",
    "torrent",
    "violet",
    "grotto",
    "heath",
    "knoll",
    "meadowlark",
    "seashell",
    "sunbeam",
    "wildflower",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_name_is_recognised_and_nothing_else() {
        for short in ["00000000", "0e738991", "ffffffff", "12345678"] {
            let name = generated_name(short).unwrap();
            assert!(is_generated_name(short, &name), "{name}");
            for other in [
                format!("{name}0"),
                format!("{name}-"),
                name.replace('-', "_"),
                name[..name.len() - 1].to_owned(),
                format!("x{name}"),
            ] {
                assert!(!is_generated_name(short, &other), "{other}");
            }
            let (head, number) = name.rsplit_once('-').unwrap();
            assert!(!is_generated_name(short, &format!("{head}-0{number}")));
            assert!(!is_generated_name(short, &format!("{head}-+{number}")));
        }
        assert!(!is_generated_name("0e73899", "able-ant-1"));
        assert!(!is_generated_name("zzzzzzzz", "able-ant-1"));
    }

    #[test]
    fn names_are_readable_and_stable() {
        let name = generated_name("0e61ed2b").unwrap();
        assert_eq!(name, generated_name("0e61ed2b").unwrap());
        let parts: Vec<&str> = name.split('-').collect();
        assert_eq!(parts.len(), 3, "{name}");
        assert!(ADJECTIVES.contains(&parts[0]) && NOUNS.contains(&parts[1]));
        assert!(parts[2].parse::<u32>().unwrap() <= 0xffff);
        assert_eq!(generated_name("xyz"), None);
        assert_eq!(generated_name("0e61ed2g"), None);
    }

    #[test]
    fn neighbouring_ids_get_different_words_and_no_two_ids_one_name() {
        let a = generated_name("0e61ed2b").unwrap();
        let b = generated_name("0e61ed2c").unwrap();
        assert_ne!(a.split('-').next(), b.split('-').next(), "{a} {b}");
        let mut seen = std::collections::HashSet::new();
        for i in 0..200_000u32 {
            let short = format!("{:08x}", i.wrapping_mul(7919));
            assert!(seen.insert(generated_name(&short).unwrap()));
        }
    }

    #[test]
    fn the_longest_generated_name_is_as_long_as_said() {
        let longest = |list: &[&str]| list.iter().map(|w| w.len()).max().unwrap();
        // Two words, two dashes and at most five digits.
        assert_eq!(
            longest(&ADJECTIVES) + longest(&NOUNS) + 2 + 5,
            GENERATED_MAX_CHARS
        );
    }

    #[test]
    fn the_word_lists_have_no_repeats_and_no_dashes() {
        for list in [&ADJECTIVES, &NOUNS] {
            let set: std::collections::HashSet<_> = list.iter().collect();
            assert_eq!(set.len(), 256);
            assert!(list.iter().all(|w| !w.contains('-') && !w.is_empty()));
        }
    }
}
