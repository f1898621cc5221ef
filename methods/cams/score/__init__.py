"""cams/score"""
