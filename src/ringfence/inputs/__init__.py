"""Reading and validating documents somebody else wrote: files, TOML and JSON with positions, typed fields.

Standard library only. The scenario loader uses it, and any other loader of user-written input should:

* :mod:`~ringfence.inputs.read` reads regular files or standard input under a size cap, as strict UTF-8;
* :mod:`~ringfence.inputs.toml` and :mod:`~ringfence.inputs.jsondoc` parse into positioned nodes
  (:mod:`~ringfence.inputs.nodes`), :mod:`~ringfence.inputs.document` picks the language and does both steps;
* :mod:`~ringfence.inputs.schema` reads fields with types, ranges and closest-name suggestions;
* :mod:`~ringfence.inputs.refs` resolves file names inside documents within a root directory.

Every error is a :class:`ringfence.errors.InputError` that prints as ``file:line:col: message``.

Import from the modules themselves: this package face re-exports nothing, so that ``ringfence run`` can read a
Plan through :mod:`~ringfence.inputs.read` without loading the parsers (start-up time is on the apply path).
"""
