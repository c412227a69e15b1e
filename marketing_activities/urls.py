app_name = "marketing_activities"
urlpatterns: list = []
