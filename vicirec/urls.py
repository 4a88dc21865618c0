from django.contrib import admin
from django.urls import path

admin.site.site_header = "vicirec — call recording archive"
admin.site.site_title = "vicirec"
admin.site.index_title = "Recordings, holds and retention"

urlpatterns = [
    path("admin/", admin.site.urls),
]
