"""The images stage: an `ImageSpec` -> a Dockerfile rendered from `images/` templates -> a built image.

Images are tagged by a hash of everything that built them, so an unchanged spec is never rebuilt and
looking one up is a single API call.
"""

from dtrun.images.spec import ImageSpec

__all__ = ["ImageSpec"]
