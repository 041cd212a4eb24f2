"""The one exception type the CLI turns into a one-line error (exit code 2, no traceback)."""


class ChmflError(Exception):
    """A problem with the user's input or configuration, stated in one line.

    Raise it with a message that names the file, tag or value at fault, e.g.
    ``ChmflError("PET series /x: missing (0018,1074) RadionuclideTotalDose; pass --dose-bq")``.
    """
