"""Storage shared among works: ``Drive`` (a shared folder), ``Path`` (a file a work produces),
``Payload`` (a value handed over). Everything lives under the app's storage URL (see
:func:`lightnb.runtime.context.resolve_storage`): a local folder by default, any fsspec URL otherwise.
"""

from .drive import Drive
from .keys import UnsafePathError
from .mount import Mount  # noqa: F401 - importable for ported apps; creating one says what to use instead
from .path import Path
from .payload import Payload

__all__ = ["Drive", "Path", "Payload", "UnsafePathError"]
