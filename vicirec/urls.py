from django.contrib import admin
from django.urls import path, re_path

from recordings import views

admin.site.site_header = "vicirec — call recording archive"
admin.site.site_title = "vicirec"
admin.site.index_title = "Recordings, holds and retention"

urlpatterns = [
    # The admin index is the compliance desk's dashboard (the admin's own URL name "admin:index" lands here).
    path("admin/", admin.site.admin_view(views.dashboard), name="dashboard"),
    path("admin/", admin.site.urls),
    # VICIdial's screens link to http://SERVER/RECORDINGS/...; the web server sends missing files here.
    re_path(r"^RECORDINGS/(?P<path>.+)$", views.vicidial_link, name="vicidial-link"),
]
