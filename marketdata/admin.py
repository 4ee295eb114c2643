from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from marketdata.models import PriceSeries
from marketdata.services import price_series_import


class PriceUploadForm(forms.Form):
    symbol = forms.CharField(max_length=40, help_text="e.g. MYFUND; stored upper case.")
    description = forms.CharField(max_length=200, required=False)
    file = forms.FileField(
        help_text=(
            "CSV or Parquet with columns date, open, high, low, close and optionally adj_close, "
            "volume; dates ascending. A bad row imports nothing and is named in the error."
        )
    )


@admin.register(PriceSeries)
class PriceSeriesAdmin(admin.ModelAdmin):
    list_display = (
        "symbol",
        "description",
        "first_date",
        "last_date",
        "rows",
        "uploaded_by",
        "updated_at",
    )
    search_fields = ("symbol", "description")
    list_filter = ("uploaded_by",)
    readonly_fields = (
        "symbol",
        "first_date",
        "last_date",
        "rows",
        "sha256",
        "uploaded_by",
        "created_at",
        "updated_at",
    )
    fields = ("symbol", "description", *readonly_fields[1:])
    change_list_template = "admin/marketdata/priceseries/change_list.html"

    def has_add_permission(self, request):
        # Series come in through the upload form, which validates every row first.
        return False

    def get_urls(self):
        upload = path(
            "upload/",
            self.admin_site.admin_view(self.upload_view),
            name="marketdata_priceseries_upload",
        )
        return [upload, *super().get_urls()]

    def upload_view(self, request):
        if not self.has_change_permission(request) and not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = PriceUploadForm(request.POST, request.FILES)
            if form.is_valid():
                upload = form.cleaned_data["file"]
                try:
                    series = price_series_import(
                        symbol=form.cleaned_data["symbol"],
                        file=upload,
                        filename=upload.name,
                        user=request.user,
                        description=form.cleaned_data["description"],
                    )
                except ValidationError as error:
                    for field, problems in error.message_dict.items():
                        form.add_error(field if field in form.fields else None, problems)
                else:
                    self.message_user(
                        request,
                        f"Imported {series.symbol}: {series.rows} rows, "
                        f"{series.first_date} – {series.last_date}.",
                        messages.SUCCESS,
                    )
                    return redirect(reverse("admin:marketdata_priceseries_changelist"))
        else:
            form = PriceUploadForm()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Upload a price series",
            "form": form,
        }
        return TemplateResponse(request, "admin/marketdata/priceseries/upload.html", context)
