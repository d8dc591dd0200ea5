"""Paraphrases of the real questions (two per question, for the image form and the text form)
and the relative clauses that state a second known_1000 fact (multi-constraint variants).

Rule. Known: `KNOWN_TEMPLATES` per known_1000 relation_id (all 33 relations in known_1000 have
templates: P17 P19 P20 P27 P30 P36 P37 P39 P101 P103 P106 P108 P127 P131 P136 P138 P140 P159
P176 P178 P190 P276 P364 P407 P413 P449 P463 P495 P641 P740 P937 P1303 P1412); any other
relation falls back to `GENERIC_TEMPLATES`. Movies: two fixed alternatives. OK-VQA:
`GENERIC_TEMPLATES` applied to the question. heldout: two country templates when the subset
asks for a country, else the generic ones. The text paraphrases use the subject where the image
paraphrases use "this <noun>".
"""

from __future__ import annotations

from mmtrace.paperworld.report import Report
from mmtrace.paperworld.rows import RealRow

# Two paraphrase templates per known_1000 relation; "{c}" is the entity ("this building" for
# the image question, the subject for the text question).
KNOWN_TEMPLATES: dict[str, tuple[str, str]] = {
    "P17": ("{c} is situated in the country of", "The country where {c} is located is"),
    "P19": ("{c} was born in the place called", "The birthplace of {c} is"),
    "P20": ("{c} passed away in the city of", "The place where {c} died is"),
    "P27": ("{c} is a citizen of", "The country of citizenship of {c} is"),
    "P30": ("{c} lies on the continent of", "The continent where {c} is located is"),
    "P36": ("The capital city of {c} is", "The seat of government of {c} is"),
    "P37": ("The official language of {c} is", "The language officially used in {c} is"),
    "P39": ("{c} holds the position of", "The position held by {c} is"),
    "P101": ("{c} works in the field of", "The field of work of {c} is"),
    "P103": ("The native language of {c} is", "The mother tongue of {c} is"),
    "P106": ("{c} works as a", "The profession of {c} is"),
    "P108": ("{c} is employed by", "The employer of {c} is"),
    "P127": ("{c} is owned by", "The owner of {c} is"),
    "P131": ("{c} lies in the region of", "The administrative area that contains {c} is"),
    "P136": ("{c} is known for the genre of", "The genre associated with {c} is"),
    "P138": ("{c} is named after", "The name of {c} comes from"),
    "P140": ("{c} follows the religion of", "The religion of {c} is"),
    "P159": ("{c} has its headquarters in", "The headquarters of {c} are in"),
    "P176": ("{c} is manufactured by", "The manufacturer of {c} is"),
    "P178": ("{c} was developed by", "The developer of {c} is"),
    "P190": ("{c} is twinned with", "The sister city of {c} is"),
    "P276": ("{c} is located in", "The location of {c} is"),
    "P364": ("The original language of {c} is", "{c} was originally made in the language"),
    "P407": ("{c} is written in the language", "The language of {c} is"),
    "P413": ("{c} plays in the position of", "The playing position of {c} is"),
    "P449": ("{c} was originally aired on", "The original network of {c} is"),
    "P463": ("{c} is a member of", "The organisation that {c} belongs to is"),
    "P495": ("{c} comes from the country of", "The country of origin of {c} is"),
    "P641": ("{c} is associated with the sport of", "The sport played by {c} is"),
    "P740": ("{c} was formed in", "The place where {c} was founded is"),
    "P937": ("{c} worked in the city of", "The place where {c} worked is"),
    "P1303": ("{c} plays the instrument", "The instrument played by {c} is the"),
    "P1412": ("{c} speaks the language", "A language spoken by {c} is"),
}
# Fallback rephrasings of a whole question ("{q}": first letter lower-cased).
GENERIC_TEMPLATES = ("Tell me, {q}", "I would like to know: {q}")
MOVIE_TEMPLATES = ("Which movie did {c} direct?", "Give the title of a film directed by {c}?")
MOVIE_MULTI_TEMPLATES = (
    "Which movie whose title begins with {t} did {c} direct?",
    "Give the title of a film directed by {c} that begins with {t}?",
)
COUNTRY_TEMPLATES = ("In which country is {c} located?", "{c} can be found in which country?")
# Relative clauses stating a second known_1000 fact ("{a}": the attribute).
KNOWN_CLAUSES: dict[str, str] = {
    "P17": "located in {a}",
    "P19": "born in {a}",
    "P20": "who died in {a}",
    "P27": "a citizen of {a}",
    "P30": "located in {a}",
    "P36": "whose capital is {a}",
    "P37": "whose official language is {a}",
    "P101": "who works in {a}",
    "P103": "whose native language is {a}",
    "P106": "who works as a {a}",
    "P108": "employed by {a}",
    "P127": "owned by {a}",
    "P131": "located in {a}",
    "P136": "known for {a}",
    "P138": "named after {a}",
    "P140": "affiliated with {a}",
    "P159": "headquartered in {a}",
    "P176": "made by {a}",
    "P178": "developed by {a}",
    "P276": "located in {a}",
    "P364": "originally in {a}",
    "P407": "written in {a}",
    "P449": "first aired on {a}",
    "P463": "a member of {a}",
    "P495": "which originated in {a}",
    "P641": "who plays {a}",
    "P740": "formed in {a}",
    "P937": "who worked in {a}",
    "P1303": "who plays the {a}",
    "P1412": "who speaks {a}",
}


def entity_phrase(span_text: str) -> str:
    """The visual constraint as used inside a sentence: "This building" -> "this building"."""
    if span_text.split()[0] in ("This", "These", "That", "Those", "The"):
        return span_text[0].lower() + span_text[1:]
    return span_text


def fill(template: str, **kw: str) -> str:
    """A template filled in, its first letter capitalised."""
    text = template.format(**kw)
    return text[0].upper() + text[1:] if text else text


def lcfirst(text: str) -> str:
    """`text` with its first letter lower-cased, unless it starts an acronym ("USA")."""
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def question_paraphrases(
    split: str, r: RealRow, start: int, end: int, report: Report
) -> tuple[list[str], list[str]]:
    """The image-form and text-form paraphrases of row `r`, whose visual span is `start:end`
    (rule: module docstring; a Known relation without templates is noted in `report`)."""
    c = entity_phrase(r.question[start:end])
    if split == "known":
        templates = KNOWN_TEMPLATES.get(r.relation)
        if templates is None:
            report.note("Known relation without paraphrase templates (generic used)")
    elif split == "movies":
        templates = MOVIE_TEMPLATES
    elif split == "heldout" and r.relation == "country":
        templates = COUNTRY_TEMPLATES
    else:
        templates = None
    if templates is None:
        q = lcfirst(r.question)
        para = [fill(t, q=q) for t in GENERIC_TEMPLATES]
        if split == "okvqa":
            return para, list(para)
        tq = r.question[:start] + r.subject + r.question[end:]
        tq = tq if start == 0 else lcfirst(tq)  # a leading name keeps its capital
        return para, [fill(t, q=tq) for t in GENERIC_TEMPLATES]
    return [fill(t, c=c) for t in templates], [fill(t, c=r.subject) for t in templates]
