"""Word lists and templates of the toy world.

Answer vocabularies are real English words or invented names that recur across entities, so a
subword tokenizer learns them as few tokens, whereas entity names are rarer invented words that span
several tokens, as in real models. Every question template carries its visual-constraint phrase
verbatim (``{c}``), so spans are known by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SYLLABLES_ONSET = [
    "b",
    "d",
    "f",
    "g",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "z",
    "br",
    "dr",
    "gr",
    "kr",
    "st",
    "th",
    "tr",
    "sh",
    "ch",
    "fl",
]
SYLLABLES_VOWEL = ["a", "e", "i", "o", "u", "ai", "ei", "ou", "ar", "or", "en", "il"]
SYLLABLES_CODA = ["", "", "n", "r", "l", "s", "th", "m", "k", "nd", "rn", "lt", "x"]

SHAPES = [
    "circle",
    "square",
    "triangle",
    "diamond",
    "star",
    "cross",
    "bar",
    "ring",
    "crescent",
    "arrow",
]
COLORS = {
    "red": (220, 40, 40),
    "orange": (240, 140, 20),
    "yellow": (230, 210, 30),
    "green": (40, 170, 60),
    "teal": (20, 160, 160),
    "blue": (40, 80, 220),
    "purple": (140, 50, 200),
    "pink": (240, 110, 180),
    "brown": (130, 80, 40),
    "black": (20, 20, 20),
}
BACKGROUNDS = ["plain", "hstripes", "vstripes", "dots", "checker", "diagonal"]


@dataclass(frozen=True)
class Relation:
    """One fact type: a question template with paraphrases, a text form, and its answer pool."""

    name: str
    template: str  # contains {c}: the visual constraint phrase
    paraphrases: tuple[str, ...]
    pool: str  # key into ANSWER_POOLS


@dataclass(frozen=True)
class Category:
    family: str  # known | movies | okvqa
    name: str
    constraint: str  # visual-constraint phrase, as it appears in templates
    name_suffix: str  # appended to generated names ("Tower"), may be ""
    text_form: str  # how the textual counterpart names the entity: "{name}" or "the {name}"
    relations: tuple[Relation, ...] = field(default_factory=tuple)


ANSWER_POOLS: dict[str, list[str]] = {
    # invented geography and organisations (Known family)
    "city": [
        "Velmora",
        "Ostrand",
        "Karvik",
        "Lunessa",
        "Tarnow",
        "Pellin",
        "Drumhal",
        "Sorvay",
        "Quenby",
        "Maristo",
        "Hadrell",
        "Ybren",
    ],
    "country": [
        "Aldoria",
        "Brevania",
        "Corvenia",
        "Dunmark",
        "Elmaria",
        "Faskor",
        "Gelland",
        "Hesperia",
        "Istral",
        "Jorvia",
    ],
    "continent": ["Norvasia", "Sudara", "Ostalia", "Westmere", "Paloria", "Kethra"],
    "architect": [
        "Mirel",
        "Castano",
        "Oduya",
        "Brennick",
        "Solvang",
        "Iwata",
        "Delacroix",
        "Farrow",
    ],
    "range": ["Greyspine", "Ashcrown", "Frostmere", "Redpeak", "Stormwall", "Ironback"],
    "company": [
        "Nexora",
        "Quillon",
        "Brightwave",
        "Orbiton",
        "Veltrix",
        "Helicor",
        "Zentro",
        "Lumigen",
        "Axiom",
        "Corvex",
    ],
    "person": [
        "Anwar",
        "Beatrix",
        "Cosmo",
        "Dagny",
        "Emeric",
        "Fionn",
        "Greta",
        "Hiroshi",
        "Ingrid",
        "Jovan",
    ],
    "sea": ["Amber", "Cobalt", "Jade", "Scarlet", "Ivory", "Onyx"],
    "platform": ["Playbox", "Gamestation", "Handheld", "Desktop", "Arcade", "Mobile"],
    # everyday knowledge (OK-VQA family)
    "inside_color": ["white", "yellow", "orange", "green", "purple", "pink"],
    "region": ["tropics", "mountains", "valleys", "islands", "deserts", "wetlands"],
    "dish": ["pie", "jam", "salad", "soup", "juice", "bread", "curry"],
    "season": ["spring", "summer", "autumn", "winter"],
    "diet": ["grass", "insects", "fish", "seeds", "leaves", "meat", "nectar"],
    "habitat": ["forest", "savanna", "ocean", "jungle", "tundra", "river", "cave"],
    "sound": ["roar", "chirp", "hiss", "howl", "squeak", "grunt"],
    "use": ["cutting", "digging", "painting", "measuring", "fishing", "cooking", "sewing"],
    "profession": ["carpenter", "farmer", "surgeon", "baker", "sailor", "painter", "tailor"],
    "material": ["steel", "wood", "plastic", "bronze", "glass", "stone"],
    "fuel": ["diesel", "electricity", "petrol", "hydrogen", "coal", "wind"],
    "terrain": ["roads", "rails", "water", "snow", "sand", "air"],
    "light": ["shade", "sunlight", "moonlight", "darkness"],
    "water": ["daily", "weekly", "rarely", "monthly"],
}

DECADES = ["1950s", "1960s", "1970s", "1980s", "1990s", "2000s", "2010s"]
TITLE_FIRST = [
    "Silent",
    "Crimson",
    "Golden",
    "Broken",
    "Hidden",
    "Frozen",
    "Electric",
    "Wild",
    "Velvet",
    "Burning",
    "Distant",
    "Hollow",
    "Iron",
    "Midnight",
    "Paper",
    "Savage",
    "Scarlet",
    "Shadow",
    "Sweet",
    "Wicked",
    "Amber",
    "Lonely",
    "Rapid",
    "Quiet",
]
TITLE_SECOND = [
    "Harbor",
    "Orchard",
    "Empire",
    "Horizon",
    "River",
    "Garden",
    "Station",
    "Letter",
    "Kingdom",
    "Summer",
    "Bridge",
    "Machine",
    "Mirror",
    "Winter",
    "Road",
    "Island",
    "Voices",
    "Witness",
    "Promise",
    "Frontier",
]
PRODUCT_FIRST = [
    "Nova",
    "Pulse",
    "Vertex",
    "Echo",
    "Zephyr",
    "Prism",
    "Atlas",
    "Flux",
    "Orion",
    "Spark",
    "Titan",
    "Halo",
]
PRODUCT_SECOND = ["Phone", "Drive", "Watch", "Pad", "Lens", "Hub", "Cam", "Book"]

R = Relation
CATEGORIES: tuple[Category, ...] = (
    Category(
        "known",
        "building",
        "This building",
        "Tower",
        "{name}",
        (
            R(
                "city",
                "{c} is located in the city of",
                ("The city where {c} stands is", "{c} can be found in the city of"),
                "city",
            ),
            R(
                "architect",
                "{c} was designed by the architect",
                ("The architect who designed {c} is", "{c} is the work of the architect"),
                "architect",
            ),
            R(
                "country",
                "{c} is located in the country of",
                ("The country where {c} stands is", "{c} can be found in the country of"),
                "country",
            ),
        ),
    ),
    Category(
        "known",
        "mountain",
        "This mountain",
        "Peak",
        "{name}",
        (
            R(
                "continent",
                "{c} is located in the continent of",
                ("The continent where {c} rises is", "{c} can be found on the continent of"),
                "continent",
            ),
            R(
                "range",
                "{c} is part of the mountain range",
                ("The mountain range containing {c} is", "{c} belongs to the mountain range"),
                "range",
            ),
            R(
                "country",
                "{c} is located in the country of",
                ("The country where {c} rises is", "{c} can be found in the country of"),
                "country",
            ),
        ),
    ),
    Category(
        "known",
        "company",
        "This company",
        "Corp",
        "{name}",
        (
            R(
                "owner",
                "{c} is owned by",
                ("The owner of {c} is", "{c} belongs to the group"),
                "company",
            ),
            R(
                "hq",
                "{c} has its headquarters in the city of",
                ("The headquarters of {c} are in the city of", "{c} is based in the city of"),
                "city",
            ),
            R(
                "founder",
                "{c} was founded by",
                ("The founder of {c} is", "{c} was started by"),
                "person",
            ),
        ),
    ),
    Category(
        "known",
        "river",
        "This river",
        "River",
        "the {name}",
        (
            R(
                "sea",
                "{c} flows into the sea called",
                ("The sea that {c} flows into is", "{c} ends in the sea called"),
                "sea",
            ),
            R(
                "country",
                "{c} is located in the country of",
                ("The country where {c} flows is", "{c} can be found in the country of"),
                "country",
            ),
        ),
    ),
    Category(
        "known",
        "game",
        "This video game",
        "Quest",
        "{name}",
        (
            R(
                "developer",
                "{c} was developed by",
                ("The developer of {c} is", "{c} was made by the studio"),
                "company",
            ),
            R(
                "platform",
                "{c} was released on the platform",
                ("The platform of {c} is", "{c} runs on the platform"),
                "platform",
            ),
        ),
    ),
    Category("movies", "director", "this director", "", "{name}", ()),
    Category(
        "okvqa",
        "fruit",
        "this fruit",
        "fruit",
        "the {name}",
        (
            R(
                "inside_color",
                "What color is the inside of {c}?",
                ("Which color is {c} on the inside?", "Inside, {c} has what color?"),
                "inside_color",
            ),
            R(
                "region",
                "Where does {c} grow?",
                ("In what places does {c} grow?", "Which places is {c} grown in?"),
                "region",
            ),
            R(
                "dish",
                "What dish is made with {c}?",
                ("Which dish do people make with {c}?", "{c} is used to make what dish?"),
                "dish",
            ),
            R(
                "season",
                "In which season is {c} harvested?",
                ("When is {c} harvested?", "{c} is picked in which season?"),
                "season",
            ),
        ),
    ),
    Category(
        "okvqa",
        "animal",
        "this animal",
        "",
        "the {name}",
        (
            R(
                "diet",
                "What does {c} eat?",
                ("What food does {c} eat?", "{c} feeds on what?"),
                "diet",
            ),
            R(
                "habitat",
                "Where does {c} live?",
                ("What is the home of {c}?", "In which habitat does {c} live?"),
                "habitat",
            ),
            R(
                "sound",
                "What sound does {c} make?",
                ("Which noise does {c} make?", "{c} makes what sound?"),
                "sound",
            ),
        ),
    ),
    Category(
        "okvqa",
        "tool",
        "this tool",
        "",
        "the {name}",
        (
            R(
                "use",
                "What is {c} used for?",
                ("What do people use {c} for?", "{c} is a tool for what?"),
                "use",
            ),
            R(
                "profession",
                "Which profession uses {c}?",
                ("Who uses {c} at work?", "{c} is used by which profession?"),
                "profession",
            ),
            R(
                "material",
                "What material is {c} made of?",
                ("What is {c} made from?", "{c} is built from what material?"),
                "material",
            ),
        ),
    ),
    Category(
        "okvqa",
        "vehicle",
        "this vehicle",
        "",
        "the {name}",
        (
            R(
                "fuel",
                "What fuel does {c} use?",
                ("What powers {c}?", "{c} runs on what fuel?"),
                "fuel",
            ),
            R(
                "terrain",
                "Where is {c} driven?",
                ("On what does {c} travel?", "{c} moves on what?"),
                "terrain",
            ),
        ),
    ),
    Category(
        "okvqa",
        "plant",
        "this plant",
        "",
        "the {name}",
        (
            R(
                "light",
                "What light does {c} need?",
                ("Which light suits {c}?", "{c} grows best in what light?"),
                "light",
            ),
            R(
                "water",
                "How often should {c} be watered?",
                ("How often does {c} need water?", "{c} should get water how often?"),
                "water",
            ),
            R(
                "region",
                "Where does {c} grow?",
                ("In what places does {c} grow?", "Which places is {c} grown in?"),
                "region",
            ),
        ),
    ),
)

# Movies family templates (the release's question, plus multi-constraint forms).
MOVIE_SINGLE = "Name a movie directed by {c}?"
MOVIE_SINGLE_PARAPHRASES = ("Which film did {c} direct?", "Give a movie that {c} directed?")
MOVIE_MULTI = "Name a movie directed by {c} that was released in {t}?"
MOVIE_MULTI_PARAPHRASES = (
    "Which film from {t} did {c} direct?",
    "Give a movie that {c} directed in {t}?",
)
PRODUCT_MULTI = "Name a product made by {c} that was launched in {t}?"
PRODUCT_MULTI_PARAPHRASES = (
    "Which product from {t} did {c} make?",
    "Give a product that {c} launched in {t}?",
)
