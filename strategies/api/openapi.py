"""Publishes the strategy language's schemas in the OpenAPI document."""

from backfolio.common.openapi import add_components
from strategies.language.schema import language_components


def add_language_components(result, generator, request, public):
    """drf-spectacular postprocessing hook: the ``Signal``/``Condition``/definition schemas."""
    return add_components(result, language_components())
