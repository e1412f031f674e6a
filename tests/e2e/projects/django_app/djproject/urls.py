from django.urls import path

from library import views

urlpatterns = [
    path("health/", views.health, name="health"),
    path("books/", views.book_list, name="book-list"),
    path("authors/<int:pk>/", views.author_detail, name="author-detail"),
    path("shelf/", views.shelf, name="shelf"),
]
