"""The letter channel: paper complaints scanned at the front desk, read, checked, sent on.

Reading side (pure or worker-bound, no web code): :mod:`channels.letter.ocr` (file types,
pages, the Tesseract worker pool), :mod:`channels.letter.images` (orientation, deskew,
contrast), :mod:`channels.letter.pdf` (text layer or scanned page) and
:mod:`channels.letter.extract` (the letter's fields, pure). See this package's README.

Front-desk side: :mod:`channels.letter.desk` (``setup`` and ``PARSERS`` for the composition
root), staff accounts and sessions (:mod:`~channels.letter.auth`, :mod:`~channels.letter.staff`),
drafts and the background reader (:mod:`~channels.letter.drafts`,
:mod:`~channels.letter.reading`), the pages (:mod:`~channels.letter.routes`,
:mod:`~channels.letter.pages`, :mod:`~channels.letter.receipt`) and the pure parser of a
confirmed letter (:mod:`~channels.letter.parse`).

Nothing is imported here, so importing the package starts no worker and loads no image or PDF
library.
"""
