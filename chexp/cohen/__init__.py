"""Real radiographs: the Cohen COVID-19 image collection with BrixIA scores (manifest, patient
split, lung masks and BrixIA zones, a torch Dataset, the models chexp trains on them) and the
NIH / RSNA / SIIM manifests of the ``paper`` profile (:mod:`.paper`).

The images are research-only and non-commercial (per-image licences in the manifest); chexp
refers to them by URL and sha256 and never redistributes them.
"""
