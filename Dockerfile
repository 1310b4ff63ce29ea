# Phoenix app image: the Streamlit UI with the embedded scheduler.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt pyproject.toml ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN pip install --no-cache-dir --no-deps -e .
ENV PHOENIX_DATA_DIR=/data \
    PHOENIX_DATABASE_URL=sqlite:////data/phoenix.db
VOLUME ["/data"]
EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health')"
CMD ["sh", "-c", "phoenix db upgrade && streamlit run app/main.py --server.port 8501 --server.address 0.0.0.0 --server.headless true"]
