"""File suffixes that a scan treats as media when it walks folders."""

VIDEO_SUFFIXES = frozenset(".mp4 .mov .mkv .avi .webm .m4v .wmv .flv .mpg .mpeg .ts .3gp .gif".split())
IMAGE_SUFFIXES = frozenset(".jpg .jpeg .png .webp .bmp .tif .tiff .heic .heif .avif".split())
MEDIA_SUFFIXES = VIDEO_SUFFIXES | IMAGE_SUFFIXES
