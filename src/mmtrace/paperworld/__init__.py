"""The paper world (`--config world=paper`): the released VQA-Constraints data, the public
sources its answers and images come from, and their annotation into the question tables every
analysis reads (the same schema as the toy world's, `mmtrace.toyworld`).

Loading the released splits (each row kept, or dropped with its reason):
- `rows`: a loaded row (`RealRow`), the CSV reading and the image rules every loader shares;
- `spans`: where the constraint is in the question (fallbacks, recovery, trimming);
- `known`, `movies`, `okvqa`, `evqa`: one loader per split, joining its answers from
  known_1000, the Movies table, OK-VQA's annotations, Encyclopedic-VQA (the long-tail split);
- `report`: the drop report (rows kept, dropped by reason, notes).

Annotating them (`annotate`, with its rules in `replacements`: corruption phrases,
`paraphrases`: paraphrase templates and fact clauses, `multi`: multi-constraint variants).

Downloading them, verified:
- `checksums`: pins, the lock file of trust-on-first-use checksums, the download errors;
- `fetch`: single files over HTTP(S) or from Google Drive, with retries;
- `images`: the many per-image files (COCO val2014 for OK-VQA, Google Landmarks v2);
- `archives`: safe, atomic archive extraction.

The workflow's steps that use them are in `mmtrace.steps.paper_data`.
"""
