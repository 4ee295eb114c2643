from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from backfolio.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/schema/", SpectacularAPIView.as_view()),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema")),
    # Each contract owns its routes, envelope and errors.
    path("", include("marketdata.urls")),
    path("", include("strategies.api.urls")),
    path("", include("backtests.api.v1.urls")),
    path("", include("backtests.research.urls")),
    path("", include("backtests.api.research.walk_forward_urls")),
    path("", include("backtests.api.portfolio.urls")),
    path("", include("backtests.api.results.urls")),
    path("", include("backtests.pages.urls")),
]
