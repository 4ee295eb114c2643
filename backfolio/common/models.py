"""Abstract bases shared by every Backfolio model."""

import uuid

from django.db import models


class TimeStampedModel(models.Model):
    """A UUID primary key and creation/update timestamps."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
