from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render

from library.models import Author, Book


def health(request):
    return HttpResponse("ok")


def book_list(request):
    books = Book.objects.select_related("author")
    return JsonResponse(
        {"books": [{"title": b.title, "author": b.author.name, "pages": b.pages} for b in books]}
    )


def author_detail(request, pk):
    try:
        author = Author.objects.get(pk=pk)
    except Author.DoesNotExist:
        raise Http404("no such author") from None
    return JsonResponse({"name": author.name, "pages": author.page_count()})


def shelf(request):
    return render(request, "library/shelf.html", {"books": Book.objects.order_by("title")})
