"""Looking at frames: contact sheets of a frames table, and fast previews straight from videos.

``contact_sheet`` reads a table written by the jobs; ``video_contact_sheet`` and
``keyframe_thumbnails`` need only video files (keyframes by default, ``exact`` on request).
"""

from sparkframes.tools.preview.contact_sheet import (
    ContactSheet,
    Layout,
    SheetRow,
    Thumb,
    contact_sheet,
    write_sheet,
)
from sparkframes.tools.preview.keyframes import (
    Thumbnail,
    exact_thumbnails,
    keyframe_thumbnails,
    video_contact_sheet,
)

__all__ = [
    "ContactSheet",
    "Layout",
    "SheetRow",
    "Thumb",
    "Thumbnail",
    "contact_sheet",
    "exact_thumbnails",
    "keyframe_thumbnails",
    "video_contact_sheet",
    "write_sheet",
]
