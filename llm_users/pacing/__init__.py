"""The open model, shared by the open-model suites (chat, workload) and the capacity shape.

``arrival`` the arrival schedule (pure); ``dispatch`` the dispatchers that hand arrivals to idle Users;
``shares`` each worker's share of the arrivals and the one notion of active workers (pure);
``share_protocol`` the Locust side of the shares (what the master sends, when a worker's schedule starts);
``open_start`` the start of the schedule with the run and the install steps the open-model suites share."""
