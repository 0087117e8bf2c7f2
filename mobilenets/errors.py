"""The error type for mistakes a user can fix (bad config, missing file): exit status 2."""


class UserError(Exception):
    """A clear, one-line message naming the field or file at fault; shown without traceback."""
